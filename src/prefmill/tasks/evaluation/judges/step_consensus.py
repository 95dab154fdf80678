"""Judge kind `step_consensus`: keep the step labels that step judges agree on (an ensemble judge)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class StepConsensusJudge(JudgeSection):
    """Consensus filter (the Qwen PRM lesson): runs after the other judges and writes a step's label
    only where every judge in `judges` labelled that step and their hard labels agree (a rollout
    judge's `raw.hard`, else `score >= 0.5`). Pair a `rollout` judge with a `step_llm` judge, say;
    train on its rows to keep only the labels both methods support."""

    kind: Literal["step_consensus"] = Field(description="`step_consensus`.")
    name: str = Field(default="step-consensus", min_length=1, description="The `judge` column of its rows.")
    judges: list[str] = Field(
        min_length=2, description="Names (`judge` column) of the step judges that must agree."
    )


def run(config: StepConsensusJudge, _cands: pa.Table, prior: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.step_judge import step_consensus

    return step_consensus(config, prior)


KIND = JudgeKind(
    config=StepConsensusJudge,
    traits=JudgeTraits(
        summary="keeps step labels on which the named step judges agree",
        row_kind="verifier",
        ensemble=True,
        order=113,
    ),
    run=run,
)
