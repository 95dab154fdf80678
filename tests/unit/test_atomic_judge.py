"""The `atomic` judge: a point judge on every sentence, aggregated by min / mean / share."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from prefmill.tasks.evaluation.judge import judge_shard
from prefmill.tasks.evaluation.judges.atomic import AtomicJudge

CANDS = pa.table(
    {
        "candidate_id": ["a", "b"],
        "prompt_id": ["p", "p"],
        "response": ["It has 4 legs. It is red. Cats are 9 years old!", "No numbers here."],
        "reference": pa.nulls(2, pa.string()),
        "error": pa.nulls(2, pa.string()),
    }
)
DIGIT = {"kind": "format", "regex": r"\d", "name": "digit"}


@pytest.mark.parametrize(("rule", "a", "b"), [("min", 0.0, 0.0), ("mean", 2 / 3, 0.0), ("share", 2 / 3, 0.0)])
def test_atoms_are_judged_and_aggregated(rule: str, a: float, b: float) -> None:
    rows = judge_shard(CANDS, [AtomicJudge(kind="atomic", judge=DIGIT, aggregate=rule)]).to_pylist()
    atoms = sorted(
        (r["candidate_id"], r["unit_index"], r["score"]) for r in rows if r["granularity"] == "atomic"
    )
    assert atoms == [("a", 0, 1.0), ("a", 1, 0.0), ("a", 2, 1.0), ("b", 0, 0.0)]
    outcome = {r["candidate_id"]: r["score"] for r in rows if r["granularity"] == "outcome"}
    assert outcome == pytest.approx({"a": a, "b": b})
    assert {r["judge"] for r in rows} == {"atomic"} and len({r["judgment_id"] for r in rows}) == 6


def test_the_inner_judge_must_be_a_point_judge() -> None:
    with pytest.raises(ValidationError, match=r"judge\.kind 'nope' is not a judge kind"):
        AtomicJudge(kind="atomic", judge={"kind": "nope"})
    with pytest.raises(ValidationError, match=r"judge\.kind 'meta' does not judge candidates one by one"):
        AtomicJudge(kind="atomic", judge={"kind": "meta"})
    with pytest.raises(ValidationError, match=r"judge\.mode must be `point`"):
        AtomicJudge(kind="atomic", judge={"kind": "llm", "mode": "pair"})
