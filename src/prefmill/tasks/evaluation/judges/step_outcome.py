"""Judge kind `step_outcome`: an outcome score per response from a step judge's labels (ensemble)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits
from prefmill.tasks.steps.config import StepsConfig

if TYPE_CHECKING:
    import pyarrow as pa


class StepOutcomeJudge(JudgeSection):
    """Outcome scores derived from step labels, so step-level judges feed the usual pairs, points and
    lists: runs after the other judges and writes one outcome row per response that the step judge
    `judge` labelled on every step, its score by `rule`: `min` (of the step scores: every step must
    hold), `mean` (of the step scores), `share` (of steps whose hard label is correct: a rollout
    judge's `raw.hard`, else `score >= 0.5`), `first_error` (the share of steps before the first wrong
    one, 1 when none is wrong)."""

    kind: Literal["step_outcome"] = Field(description="`step_outcome`.")
    name: str = Field(default="step-outcome", min_length=1, description="The `judge` column of its rows.")
    judge: str = Field(
        min_length=1, description="Name (`judge` column) of the step judge whose labels are aggregated."
    )
    rule: Literal["min", "mean", "share", "first_error"] = Field(
        default="min", description="How the step labels become the outcome score."
    )
    segmenter: StepsConfig | None = Field(
        default=None,
        description="How responses are cut into steps (to know each one's step count); default: the "
        "recipe's `steps` section.",
    )


def run(config: StepOutcomeJudge, cands: pa.Table, prior: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.step_judge import step_outcome

    return step_outcome(config, cands, prior)


KIND = JudgeKind(
    config=StepOutcomeJudge,
    traits=JudgeTraits(
        summary="outcome scores from a step judge's labels (min, mean, share, first error)",
        row_kind="verifier",
        ensemble=True,
        granularity="step",
        order=116,
    ),
    run=run,
)
