"""Judge kind `rollout`: Monte-Carlo step labels (Math-Shepherd) from continuations of every step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges._rollout_config import RolloutSection, fingerprint
from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class RolloutJudge(RolloutSection):
    """Monte-Carlo step labels (Math-Shepherd): from the prefix ending each step, `n` continuations;
    the step's `score` is the share whose final answer the verifier accepts against the prompt's
    `reference` (soft label; the hard label, "any accepted", is `score > 0` and `raw.hard`). The last
    step is the response's own verdict. Writes one row per step (`granularity` `step`, `unit_index`
    the step); needs the recipe's `steps` section. `n x (steps - 1)` rollouts per solution."""

    kind: Literal["rollout"] = Field(description="`rollout`.")


def run(config: RolloutJudge, cands: pa.Table) -> pa.Table:
    from prefmill.engines.registry import get_engine
    from prefmill.tasks.evaluation.rollouts import monte_carlo, solutions, step_judgments

    sols = solutions(config, cands)
    if sols:
        monte_carlo(config, get_engine(config.engine), sols)
    return step_judgments(config, sols, soft=True)


KIND = JudgeKind(
    config=RolloutJudge,
    traits=JudgeTraits(
        summary="Monte-Carlo step labels: share of continuations from each step that reach the reference",
        row_kind="verifier",
        engine=True,
        granularity="step",
        order=110,
    ),
    run=run,
    fingerprint=fingerprint,
)
