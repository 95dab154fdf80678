"""Judge kind `prm`: a process reward model (``prefmill train --method prm``) scores every step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits
from prefmill.tasks.steps.config import StepsConfig

if TYPE_CHECKING:
    import pyarrow as pa

#: Bump when the same model and steps give other rows (input layout, aggregation).
PRM_PARSER_VERSION = "1"


class PRMJudge(JudgeSection):
    """A process reward model scores each step of a response: a two-label token-classification model
    folder (as `prefmill train --method prm` saves it) reads the prompt's last user message and the
    steps, each followed by the separator it was trained with, and gives each step P(correct) at its
    separator. One row per step (`granularity` `step`, `unit_index` the step, `score` = P(correct));
    and, unless `aggregate` is `none`, one outcome row whose score is the `min` (every step must hold),
    `mean` or `last` of the step scores. Needs the recipe's `steps` section."""

    kind: Literal["prm"] = Field(description="`prm`.")
    model: str = Field(description="Folder of a token-classification PRM (two labels; `train --method prm`).")
    name: str | None = Field(default=None, description="The `judge` column (default `prm:<folder name>`).")
    aggregate: Literal["min", "mean", "last", "none"] = Field(
        default="min", description="Outcome score from the step scores (`none`: step rows only)."
    )
    max_length: int = Field(default=2048, ge=8, le=131072, description="Longest input in tokens.")
    segmenter: StepsConfig | None = Field(
        default=None, description="How responses are cut into steps; default: the recipe's `steps` section."
    )

    @property
    def judge_name(self) -> str:
        return self.name or f"prm:{Path(self.model).name}"


def run(config: PRMJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.prm_judge import prm_judge

    return prm_judge(config, cands)


def fingerprint(config: PRMJudge) -> dict[str, Any]:
    """The model folder's identity (config and weight files); a one-line error when it is not a PRM."""
    from prefmill.tasks.evaluation.prm_judge import model_digest

    return {"parser": PRM_PARSER_VERSION, "model": model_digest(config.model)}


KIND = JudgeKind(
    config=PRMJudge,
    traits=JudgeTraits(
        summary="a trained process reward model scores each step (P(correct))",
        row_kind="reward_model",
        granularity="step",
        order=115,
    ),
    run=run,
    fingerprint=fingerprint,
)
