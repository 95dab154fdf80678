"""The recipe's `steps` section: how responses are cut into reasoning steps (``segment`` reads it to
write the `steps` table; the step-level judges embed it). Declared here, next to its work; the recipe
imports it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from prefmill.section import _Section

Segmenter = Literal["lines", "step-n", "sentences", "regex"]


class StepsConfig(_Section):
    """Step segmentation: one `steps` row per step of every candidate, and the units the step-level
    judges (`rollout`, `rollout_search`) label. A step's `prefix` is the response up to the step's
    end: rollouts continue from it."""

    segmenter: Segmenter = Field(
        default="lines",
        description="`lines` (each non-blank line is a step), `step-n` (a step starts at each "
        "`Step n:` label), `sentences` (split after `.`, `!`, `?` and at line breaks) or `regex` (a step "
        "starts at each match of `pattern`). Text before the first boundary belongs to the first step.",
    )
    pattern: str | None = Field(
        default=None,
        description="For `regex`: a Python regular expression; a step starts at each match (use `(?m)^` "
        "to anchor at line starts).",
    )
    max_steps: int = Field(
        default=64, ge=1, le=10_000, description="Most steps a response may have (see `over_limit`)."
    )
    over_limit: Literal["error", "skip"] = Field(
        default="error",
        description="A response with more than `max_steps` steps: `error` stops the build naming it; "
        "`skip` writes no steps for it (its step-level judges then skip it too).",
    )

    @model_validator(mode="after")
    def _pattern(self) -> StepsConfig:
        if self.segmenter == "regex":
            if not self.pattern:
                raise ValueError("steps.pattern: the regex segmenter needs a pattern; set `pattern`")
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"steps.pattern: {self.pattern!r} does not compile ({exc}); fix the regex"
                ) from None
            if compiled.fullmatch(""):
                raise ValueError(
                    f"steps.pattern: {self.pattern!r} matches the empty string; make it match text"
                )
        elif self.pattern is not None:
            raise ValueError(
                f"steps.pattern is only for segmenter `regex`, not `{self.segmenter}`; remove it"
            )
        return self
