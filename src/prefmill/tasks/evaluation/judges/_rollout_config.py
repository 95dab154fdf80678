"""What the rollout judge kinds (`rollout`, `rollout_search`) share: their config fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeSection
from prefmill.tasks.steps.config import StepsConfig


class RolloutSection(JudgeSection):
    """Step labels from rollouts: continuations sampled from a step's prefix (the reply up to the end
    of that step) and checked by a final-answer verifier against the prompt's `reference`."""

    name: str | None = Field(
        default=None, description="The `judge` column of its rows (default: `<kind>:<engine>`)."
    )
    engine: str = Field(
        default="transformers:smollm2",
        description="Rollout engine as `kind:model`; it must continue an assistant prefix (transformers, "
        "vllm, openai against a vLLM/SGLang server).",
    )
    n: int = Field(
        default=8, ge=1, le=256, description="Continuations sampled from each step prefix it tests."
    )
    temperature: float = Field(default=0.7, ge=0, le=5, description="Rollout sampling temperature.")
    top_p: float = Field(default=0.95, gt=0, le=1, description="Rollout nucleus mass.")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest continuation.")
    verifier: Literal["math", "arithmetic"] = Field(
        default="math",
        description="What accepts a rolled-out answer: `math` (the math verifier's extraction, exact) or "
        "`arithmetic` (the final number equals the reference).",
    )
    seed: int = Field(default=0, description="Seed of the rollouts (with the candidate, step and sample).")
    segmenter: StepsConfig | None = Field(
        default=None,
        description="How responses are cut into steps; default: the recipe's `steps` section (so "
        "`unit_index` is the `steps` table's `step_index`).",
    )

    @property
    def judge_name(self) -> str:
        return self.name or f"{self.kind}:{self.engine}"


#: Bump when the same rollouts give other labels (the verifier call, the search, the last step's rule).
ROLLOUT_PARSER_VERSION = "1"


def fingerprint(config: RolloutSection) -> dict[str, Any]:
    """The labelling code's version and the segmentation the labels are over (filled from the
    recipe's `steps` when not set here)."""
    segmenter = config.segmenter
    return {
        "parser": ROLLOUT_PARSER_VERSION,
        "segmenter": None if segmenter is None else segmenter.model_dump(mode="json"),
    }
