"""Step-level verdicts that are not rollouts: a judge model naming the first wrong step
(``step_llm``), the consensus of step judges (``step_consensus``), and outcome scores derived from a
step judge's labels (``step_outcome``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Protocol

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.errors import EngineError, RecipeError
from prefmill.ids import seed_for
from prefmill.progress import count_generated
from prefmill.tasks.evaluation.rollouts import step_judgment_id

if TYPE_CHECKING:
    import pyarrow as pa

    from prefmill.engines.base import Engine
    from prefmill.tasks.steps.config import StepsConfig


class StepLLMSettings(Protocol):
    """What the first-error judge reads of a ``step_llm`` config (judges/step_llm.py)."""

    name: str | None
    engine: str
    template: str | None
    temperature: float
    max_new_tokens: int
    structured: bool
    seed: int
    segmenter: StepsConfig | None

    @property
    def judge_name(self) -> str: ...


class StepConsensusSettings(Protocol):
    """What the consensus filter reads of a ``step_consensus`` config (judges/step_consensus.py)."""

    name: str
    judges: list[str]


class StepOutcomeSettings(Protocol):
    """What outcome-from-steps reads of a ``step_outcome`` config (judges/step_outcome.py)."""

    name: str
    judge: str
    rule: str
    segmenter: StepsConfig | None


FIRST_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"first_error": {"type": "integer"}},
    "required": ["first_error"],
    "additionalProperties": False,
}
_FIRST_ERROR = re.compile(r'"?first_error"?\s*[:=]\s*(-?\d+)')


def parse_first_error(reply: str | None, n_steps: int) -> tuple[int | None, str | None]:
    """(first wrong step as a 0-based index or None for "no error", parse error) of a reply."""
    m = _FIRST_ERROR.search(reply or "") or re.search(r"(-?\d+)", reply or "")
    if m is None:
        return None, "no first_error number in the reply"
    k = int(m.group(1))
    if not 0 <= k <= n_steps:
        return None, f"first_error {k} is not a step number (1..{n_steps}) or 0"
    return (k - 1 if k else None), None


def _row(judge: str, kind: str, cid: str, pid: str, i: int, **values: Any) -> dict[str, Any]:
    return {
        "judgment_id": step_judgment_id(judge, cid, i),
        "prompt_id": pid,
        "candidate_id": cid,
        "other_candidate_id": None,
        "judge": judge,
        "kind": kind,
        "mode": "point",
        "criterion": "overall",
        "granularity": "step",
        "unit_index": i,
        "order": None,
        "prefers_first": None,
        **values,
    }


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table

    schema = empty_table("judgments").schema
    if not rows:
        return schema.empty_table()
    return conform(
        "judgments", pa.Table.from_pylist([{**dict.fromkeys(schema.names), **r} for r in rows], schema=schema)
    )


def step_llm_judge(config: StepLLMSettings, cands: pa.Table, engine: Engine | None = None) -> pa.Table:
    """One row per step of every candidate: 1 before the step the judge model names, 0 from it on."""
    from prefmill.tasks.evaluation.llm_judge import conversation_text, structured
    from prefmill.tasks.evaluation.templates import load_template
    from prefmill.tasks.steps.segment import checked_steps

    if config.segmenter is None:
        raise RecipeError(
            "evaluation.judges (step_llm): step labels need steps; add a `steps` section to the recipe "
            "(e.g. `steps: {segmenter: lines}`) or set the judge's `segmenter`"
        )
    if engine is None:
        from prefmill.engines.registry import get_engine

        engine = get_engine(config.engine)
    template = load_template("first_error", config.template)
    schema = FIRST_ERROR_SCHEMA if structured(engine, config.structured) else None
    sampling = SamplingParams(config.temperature, 1.0, config.max_new_tokens)
    cols = ["candidate_id", "prompt_id", "response", "messages", "reference"]
    todo, requests = [], []
    for r in cands.select([c for c in cols if c in cands.column_names]).to_pylist():
        if r.get("response") is None:
            continue
        steps = checked_steps(r["candidate_id"], r["response"], config.segmenter)
        if not steps:
            continue
        text = template.render(
            conversation=conversation_text(r.get("messages")),
            steps=[s.text for s in steps],
            reference=r.get("reference"),
        )
        seed = seed_for(config.seed, config.judge_name, r["candidate_id"])
        todo.append((r, len(steps)))
        requests.append(GenerationRequest([{"role": "user", "content": text}], sampling, seed, schema))
    gens = engine.generate(requests) if requests else []
    count_generated(gens)
    if len(gens) != len(requests):
        raise EngineError(f"engine {engine.name} returned {len(gens)} results for {len(requests)} requests")
    rows = []
    for (r, n), gen in zip(todo, gens, strict=True):
        first, problem = parse_first_error(gen.text, n) if gen.error is None else (None, gen.error)
        named = "no wrong step" if first is None else f"first wrong step {first + 1}"
        for i in range(n):
            score = None if problem else (1.0 if first is None or i < first else 0.0)
            rows.append(
                _row(
                    config.judge_name,
                    "llm",
                    r["candidate_id"],
                    r["prompt_id"],
                    i,
                    score=score,
                    rationale=None if problem else f"the judge names {named}",
                    raw=gen.text,
                    parse_error=problem,
                )
            )
    return _table(rows)


def hard_label(row: dict[str, Any]) -> float | None:
    """A step row's 0/1 label: the rollout judges' ``raw.hard``, else ``score >= 0.5``."""
    if row.get("score") is None or row.get("parse_error") is not None:
        return None
    try:
        hard = json.loads(row.get("raw") or "null")
    except ValueError:
        hard = None
    if isinstance(hard, dict) and hard.get("hard") in (0, 1, 0.0, 1.0):
        return float(hard["hard"])
    return 1.0 if row["score"] >= 0.5 else 0.0


def step_consensus(config: StepConsensusSettings, prior: pa.Table) -> pa.Table:
    """The steps on which every judge in ``config.judges`` gave a label and all labels agree."""
    import pyarrow.compute as pc

    names = list(config.judges)
    steps = prior.filter(pc.equal(prior.column("granularity"), "step"))
    labels: dict[tuple[str, int], dict[str, float | None]] = {}
    pids: dict[str, str] = {}
    for row in steps.to_pylist():
        if row["judge"] in names:
            labels.setdefault((row["candidate_id"], row["unit_index"]), {})[row["judge"]] = hard_label(row)
            pids[row["candidate_id"]] = row["prompt_id"]
    rows = []
    for (cid, i), by_judge in sorted(labels.items()):
        got = [by_judge.get(n) for n in names]
        if None in got or len(set(got)) != 1:
            continue
        rows.append(
            _row(
                config.name,
                "verifier",
                cid,
                pids[cid],
                i,
                score=got[0],
                rationale=f"{' and '.join(names)} agree",
                raw=json.dumps(by_judge, sort_keys=True),
                parse_error=None,
            )
        )
    return _table(rows)


def outcome_from_steps(scores: list[float], hard: list[float], rule: str) -> float:
    """A response's outcome score from its steps' scores and hard labels, by ``rule``."""
    if rule == "min":
        return min(scores)
    if rule == "mean":
        return sum(scores) / len(scores)
    if rule == "share":
        return sum(hard) / len(hard)
    first = next((i for i, h in enumerate(hard) if h == 0.0), len(hard))
    return first / len(hard)


def step_outcome(config: StepOutcomeSettings, cands: pa.Table, prior: pa.Table) -> pa.Table:
    """One outcome row per response whose every step ``config.judge`` labelled (usable rows only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from prefmill.tasks.steps.segment import split_steps

    if config.segmenter is None:
        raise RecipeError(
            "evaluation.judges (step_outcome): outcome scores from step labels need steps; add a `steps` "
            "section to the recipe (e.g. `steps: {segmenter: lines}`) or set the judge's `segmenter`"
        )
    n_steps = {
        r["candidate_id"]: len(split_steps(r["response"], config.segmenter))
        for r in cands.select(["candidate_id", "response"]).to_pylist()
        if r["response"] is not None
    }
    from prefmill.storage.schemas import conform, empty_table
    from prefmill.tasks.evaluation.verifiers import point_judgment_id

    mine = prior.filter(
        pc.and_(pc.equal(prior.column("granularity"), "step"), pc.equal(prior.column("judge"), config.judge))
    )
    by_cand: dict[str, list[dict[str, Any]]] = {}
    for row in mine.to_pylist():
        by_cand.setdefault(row["candidate_id"], []).append(row)
    schema = empty_table("judgments").schema
    rows = []
    for cid, steps in sorted(by_cand.items()):
        steps.sort(key=lambda r: r["unit_index"])
        hard = [hard_label(r) for r in steps]
        whole = [r["unit_index"] for r in steps] == list(range(n_steps.get(cid, -1)))
        if None in hard or not whole:
            continue  # a step without a usable label: no outcome from a partial chain
        scores = [float(r["score"]) for r in steps]
        rows.append(
            {
                **dict.fromkeys(schema.names),
                "judgment_id": point_judgment_id(config.name, cid),
                "prompt_id": steps[0]["prompt_id"],
                "candidate_id": cid,
                "judge": config.name,
                "kind": "verifier",
                "mode": "point",
                "criterion": "overall",
                "granularity": "outcome",
                "score": outcome_from_steps(scores, hard, config.rule),  # type: ignore[arg-type]
                "rationale": f"{config.rule} of {len(steps)} step labels of {config.judge}",
            }
        )
    if not rows:
        return schema.empty_table()
    return conform("judgments", pa.Table.from_pylist(rows, schema=schema))
