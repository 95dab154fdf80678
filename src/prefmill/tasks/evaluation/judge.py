"""Run the named judges over one shard of candidates and return one ``judgments`` table.

The judge kinds are the modules of ``prefmill.tasks.evaluation.judges`` (see its registry): each
declares which candidates its runner judges and whether it is an ensemble judge, which runs after the
others on their rows (``meta``). Kinds whose work is not per shard (``human``: one extra shard the
evaluation flow writes; ``critique_revise``: revisions the revision flow adds as candidates) write
nothing here.

Candidates whose ``error`` is set (failed generations) are never judged: they stay visible in the
candidates table and downstream SQL excludes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.errors import PrefmillError
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.judges.registry import KNOWN_JUDGES, JudgeConfig, judge_kind

#: Bump when a judge here gives different judgments for the same candidates (DESIGN §3).
EVALUATION_CODE_VERSION = "1"

__all__ = ["EVALUATION_CODE_VERSION", "KNOWN_JUDGES", "check_judges", "judge_shard"]


def _configs(judges: Sequence[JudgeConfig | str]) -> list[Any]:
    """Judge configs, with bare names validated into configs; unknown kinds are a ``PrefmillError``."""
    unknown = [k for k in (j if isinstance(j, str) else j.kind for j in judges) if k not in KNOWN_JUDGES]
    if unknown:
        raise PrefmillError(
            f"unknown judge(s) {', '.join(repr(j) for j in unknown)}: known judges are "
            f"{', '.join(KNOWN_JUDGES)}; fix the evaluation judges in the recipe"
        )
    return [judge_kind(j).config(kind=j) if isinstance(j, str) else j for j in judges]


def check_judges(judges: Sequence[JudgeConfig | str]) -> None:
    """Raise ``PrefmillError`` naming the unknown judges and the known ones."""
    _configs(judges)


def judge_shard(cands: pa.Table, judges: Sequence[JudgeConfig | str]) -> pa.Table:
    """Judge one shard: ``cands`` is candidates joined with their prompt's messages, reference and rubric.

    Columns: candidate_id, prompt_id, response, reference, finish_reason, n_tokens, error (and
    messages, rubric for the LLM judges). Ensemble judges run after the others, on their rows. Rows
    with ``error`` set are skipped; each judge in ``judges`` (recipe configs or bare kinds, in order,
    equal configs once) runs on the rows it applies to; the result is one conforming ``judgments`` table.
    """
    configs = _configs(judges)
    if "reference" not in cands.column_names:
        cands = cands.append_column("reference", pa.nulls(cands.num_rows, pa.string()))
    if "error" in cands.column_names:
        cands = cands.filter(pc.is_null(cands.column("error")))
    # equal configs run once (configs hold lists and dicts, so compare their JSON)
    unique = list({config.model_dump_json(): config for config in configs}.values())
    kinds = [judge_kind(config) for config in unique]
    parts = [k.run(c, cands) for c, k in zip(unique, kinds, strict=True) if not k.traits.ensemble]
    parts = [p for p in parts if p.num_rows]
    for config, kind in zip(unique, kinds, strict=True):
        if kind.traits.ensemble:
            prior = pa.concat_tables(parts) if parts else empty_table("judgments")
            parts.append(kind.run(config, cands, prior))
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return empty_table("judgments")
    return conform("judgments", pa.concat_tables(parts))
