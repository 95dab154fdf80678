"""Judge kind `rollout_search`: the first wrong step by binary search over rollouts (OmegaPRM-style)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges._rollout_config import RolloutSection, fingerprint
from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class RolloutSearchJudge(RolloutSection):
    """The first wrong step by binary search (OmegaPRM-style): a solution whose answer the verifier
    accepts is correct at every step (no rollouts); otherwise steps are bisected, `n` continuations
    from the middle step's prefix per round (any accepted: the error is later), so a solution costs
    `n x ceil(log2(steps))` rollouts instead of `n x (steps - 1)`. `score` is the hard label: 1
    before the first wrong step, 0 from it on; `raw` holds the measured shares, the first error and
    the rollouts the solution took. Needs the recipe's `steps` section."""

    kind: Literal["rollout_search"] = Field(description="`rollout_search`.")


def run(config: RolloutSearchJudge, cands: pa.Table) -> pa.Table:
    from prefmill.engines.registry import get_engine
    from prefmill.tasks.evaluation.rollouts import binary_search, solutions, step_judgments

    sols = solutions(config, cands)
    if any(not s.final_ok for s in sols):
        binary_search(config, get_engine(config.engine), sols)
    else:
        for s in sols:
            s.first_error = None
    return step_judgments(config, sols, soft=False)


KIND = JudgeKind(
    config=RolloutSearchJudge,
    traits=JudgeTraits(
        summary="binary search for the first wrong step with O(log steps) rollout batches",
        row_kind="verifier",
        engine=True,
        granularity="step",
        order=111,
    ),
    run=run,
    fingerprint=fingerprint,
)
