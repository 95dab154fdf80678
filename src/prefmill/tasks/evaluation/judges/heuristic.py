"""Judge kind `heuristic`: a length-normalised quality heuristic for prompts without a reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, without_reference

if TYPE_CHECKING:
    import pyarrow as pa


class HeuristicJudge(JudgeSection):
    """Length-normalised quality heuristic for prompts without a reference (smoke tests, cold starts)."""

    kind: Literal["heuristic"] = Field(description="`heuristic`.")


def run(_config: HeuristicJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.heuristic import heuristic_judge

    return heuristic_judge(without_reference(cands))


KIND = JudgeKind(
    config=HeuristicJudge,
    traits=JudgeTraits(
        summary="length-normalised quality heuristic, for prompts without a reference",
        row_kind="verifier",
        gold=False,  # a weak signal, not ground truth
        judge_name="heuristic",
        order=20,
    ),
    run=run,
)
