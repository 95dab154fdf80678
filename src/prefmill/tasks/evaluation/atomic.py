"""Atomic-level judging: a point judge on every sentence (or line) of a response, and the outcome
score aggregated from the atoms' scores (``min``, ``mean``, ``share`` at or above a threshold)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from prefmill.ids import content_id
from prefmill.tasks.evaluation.verifiers import point_judgment_id

if TYPE_CHECKING:
    import pyarrow as pa

_SEP = "#atom"


class AtomicSettings(Protocol):
    """What atomic judging reads of an ``atomic`` judge's config (judges/atomic.py ``AtomicJudge``)."""

    name: str
    split: Any
    max_atoms: int
    aggregate: str
    threshold: float


def aggregate(scores: list[float], rule: str, threshold: float) -> float:
    """The outcome score of a response from its atoms' scores."""
    if rule == "min":
        return min(scores)
    if rule == "mean":
        return sum(scores) / len(scores)
    return sum(s >= threshold for s in scores) / len(scores)


def atomic_judge(
    config: AtomicSettings, judge_atoms: Callable[[pa.Table], pa.Table], cands: pa.Table
) -> pa.Table:
    """One ``atomic`` row per judged atom and one ``outcome`` row per response with usable atoms;
    ``judge_atoms`` is the inner point judge's work over a table of atoms (one row per atom)."""
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table
    from prefmill.tasks.steps.config import StepsConfig
    from prefmill.tasks.steps.segment import split_steps

    split = StepsConfig(segmenter=config.split)
    atoms: dict[str, list[Any]] = {name: [] for name in cands.column_names}
    for row in cands.to_pylist():
        if row.get("response") is None:
            continue
        for atom in split_steps(row["response"], split)[: config.max_atoms]:
            for name in cands.column_names:
                atoms[name].append(row[name])
            atoms["candidate_id"][-1] = f"{row['candidate_id']}{_SEP}{atom.index}"
            atoms["response"][-1] = atom.text
    if not atoms["candidate_id"]:
        return empty_table("judgments")
    verdicts = judge_atoms(pa.table(atoms, schema=cands.schema)).to_pylist()
    schema = empty_table("judgments").schema
    rows: list[dict[str, Any]] = []
    per_candidate: dict[str, list[float]] = {}
    pids: dict[str, str] = {}
    for v in sorted(verdicts, key=lambda v: v["candidate_id"]):
        cid, _, index = v["candidate_id"].rpartition(_SEP)
        i = int(index)
        raw = json.dumps({"judge": v["judge"], "raw": v["raw"]})
        rows.append(
            {
                **dict.fromkeys(schema.names),
                **{k: v[k] for k in ("prompt_id", "kind", "score", "rationale", "parse_error")},
                "judgment_id": content_id([config.name, cid, None, "overall", "atomic", i, None]),
                "candidate_id": cid,
                "judge": config.name,
                "mode": "point",
                "criterion": "overall",
                "granularity": "atomic",
                "unit_index": i,
                "raw": raw,
            }
        )
        pids[cid] = v["prompt_id"]
        if v["score"] is not None and v["parse_error"] is None:
            per_candidate.setdefault(cid, []).append(float(v["score"]))
    for cid, scores in sorted(per_candidate.items()):
        score = aggregate(scores, config.aggregate, config.threshold)
        rows.append(
            {
                **dict.fromkeys(schema.names),
                "judgment_id": point_judgment_id(config.name, cid),
                "prompt_id": pids[cid],
                "candidate_id": cid,
                "judge": config.name,
                "kind": verdicts[0]["kind"],
                "mode": "point",
                "criterion": "overall",
                "granularity": "outcome",
                "score": score,
                "rationale": f"{config.aggregate} of {len(scores)} atoms' scores",
            }
        )
    return conform("judgments", pa.Table.from_pylist(rows, schema=schema))
