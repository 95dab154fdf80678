"""Run the named judges over one shard of candidates and return one ``judgments`` table.

Judges known here:

* ``arithmetic`` -- ``verifiers.arithmetic_verifier`` on candidates whose prompt has a reference;
* ``heuristic`` -- ``heuristic.heuristic_judge`` on candidates whose prompt has no reference;
* ``math`` -- ``math_answer.math_verifier`` on candidates whose prompt has a (non-code) reference;
* ``code`` -- ``code.code_verifier`` on candidates whose reference is a code test spec;
* ``format`` -- ``format_check.format_verifier`` on every candidate;
* ``reward_model`` -- ``reward_model.reward_model_judge`` on every candidate (needs ``messages``);
* ``human`` -- nothing per shard: ``human.human_judgments`` is one extra shard the evaluation flow writes;
* ``llm`` -- ``llm_judge.llm_judge``: a judge model in point, pair or rubric mode;
* ``meta`` -- ``meta.meta_judge``: runs after the others and resolves the items they disagree on;
* ``critique_revise`` -- writes no judgments here: the flow adds its revisions as candidates first.

Candidates whose ``error`` is set (failed generations) are never judged: they stay visible in the
candidates table and downstream SQL excludes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.errors import PrefmillError
from prefmill.recipe import JUDGE_MODELS, JudgeConfig
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.code import code_verifier
from prefmill.tasks.evaluation.format_check import format_verifier
from prefmill.tasks.evaluation.heuristic import heuristic_judge
from prefmill.tasks.evaluation.llm_judge import llm_judge
from prefmill.tasks.evaluation.math_answer import math_verifier
from prefmill.tasks.evaluation.meta import meta_judge
from prefmill.tasks.evaluation.reward_model import reward_model_judge
from prefmill.tasks.evaluation.verifiers import arithmetic_verifier

#: Bump when a judge here gives different judgments for the same candidates (DESIGN §3).
EVALUATION_CODE_VERSION = "1"


def _with_reference(cands: pa.Table) -> pa.Table:
    return cands.filter(pc.is_valid(cands.column("reference")))


def _without_reference(cands: pa.Table) -> pa.Table:
    return cands.filter(pc.is_null(cands.column("reference")))


Runner = Callable[[Any, pa.Table], pa.Table]
"""A judge: (its recipe config, the candidates shard) -> judgments rows."""

#: kind -> (what it does, runner). A new adjudicator adds a recipe model (recipe.JUDGE_MODELS) and a
#: runner here; the runner picks the candidates it applies to.
JUDGES: dict[str, tuple[str, Runner]] = {
    "arithmetic": (
        "checks the final number against the reference",
        lambda _config, c: arithmetic_verifier(_with_reference(c)),
    ),
    "heuristic": (
        "length-normalised quality heuristic, for prompts without a reference",
        lambda _config, c: heuristic_judge(_without_reference(c)),
    ),
    "math": (
        "math final-answer verifier (numbers, fractions, \\boxed{}, #### n) against the reference",
        lambda config, c: math_verifier(config, _with_reference(c)),
    ),
    "code": (
        "runs the response's Python code against the reference's tests in a sandbox",
        lambda config, c: code_verifier(config, _with_reference(c)),
    ),
    "format": (
        "JSON schema, regex and length checks on every response",
        lambda config, c: format_verifier(config, c),
    ),
    "reward_model": (
        "a transformers sequence-classification model scores (prompt, response)",
        lambda config, c: reward_model_judge(config, c),
    ),
    "human": (
        "verdicts imported from a CSV/JSONL file (one extra shard, written by the evaluation flow)",
        lambda _config, _c: empty_table("judgments"),
    ),
    "llm": (
        "a judge model: point, pair (both orders) or rubric mode",
        lambda config, c: llm_judge(config, c),
    ),
    # critique_revise adds candidates before judging (flows/revision.py); it writes no judgments.
    "critique_revise": (
        "critiques and revises candidates; the revisions are judged as new candidates",
        lambda _config, _c: empty_table("judgments"),
    ),
}
#: Judges that also see the rows the other judges wrote for the shard; they run after them.
ENSEMBLE_JUDGES: dict[str, tuple[str, Callable[[Any, pa.Table, pa.Table], pa.Table]]] = {
    "meta": (
        "a judge model that re-scores only the candidates the other judges disagree on",
        lambda config, c, prior: meta_judge(config, c, prior),
    ),
}
KNOWN_JUDGES: tuple[str, ...] = (*JUDGES, *ENSEMBLE_JUDGES)


def _configs(judges: Sequence[JudgeConfig | str]) -> list[Any]:
    """Judge configs, with bare names validated into configs; unknown kinds are a ``PrefmillError``."""
    kinds = [j if isinstance(j, str) else j.kind for j in judges]
    unknown = [k for k in kinds if k not in KNOWN_JUDGES]
    if unknown:
        raise PrefmillError(
            f"unknown judge(s) {', '.join(repr(j) for j in unknown)}: known judges are "
            f"{', '.join(KNOWN_JUDGES)}; fix the evaluation judges in the recipe"
        )
    return [JUDGE_MODELS[j](kind=j) if isinstance(j, str) else j for j in judges]


def check_judges(judges: Sequence[JudgeConfig | str]) -> None:
    """Raise ``PrefmillError`` naming the unknown judges and the known ones."""
    _configs(judges)


def judge_shard(cands: pa.Table, judges: Sequence[JudgeConfig | str]) -> pa.Table:
    """Judge one shard: ``cands`` is candidates joined with their prompt's messages, reference and rubric.

    Columns: candidate_id, prompt_id, response, reference, finish_reason, n_tokens, error (and
    messages, rubric for the LLM judges). Meta judges run after the others, on their rows. Rows with
    ``error`` set are skipped; each judge in ``judges`` (recipe configs or bare kinds, in order, equal
    configs once) runs on the rows it applies to; the result is one conforming ``judgments`` table.
    """
    configs = _configs(judges)
    if "reference" not in cands.column_names:
        cands = cands.append_column("reference", pa.nulls(cands.num_rows, pa.string()))
    if "error" in cands.column_names:
        cands = cands.filter(pc.is_null(cands.column("error")))
    # equal configs run once (configs hold lists and dicts, so compare their JSON)
    unique = list({config.model_dump_json(): config for config in configs}.values())
    parts = [JUDGES[config.kind][1](config, cands) for config in unique if config.kind in JUDGES]
    parts = [p for p in parts if p.num_rows]
    for config in unique:
        if config.kind in ENSEMBLE_JUDGES:
            prior = pa.concat_tables(parts) if parts else empty_table("judgments")
            parts.append(ENSEMBLE_JUDGES[config.kind][1](config, cands, prior))
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return empty_table("judgments")
    return conform("judgments", pa.concat_tables(parts))
