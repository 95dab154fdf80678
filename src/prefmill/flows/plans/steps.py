"""The steps stage's plan: the recipe's `steps` segmenter decides the `steps` version (None without
a `steps` section: the stage does not run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefmill.recipe import Recipe
from prefmill.tasks.steps.config import StepsConfig

#: Bump when the same candidates and segmenter give different steps.
STEPS_CODE_VERSION = "1"


@dataclass(frozen=True)
class StepsPlan:
    """The steps stage, resolved once per build: ``config`` decides the version."""

    dataset: str
    config: dict[str, Any]
    segmenter: StepsConfig


def plan_steps(recipe: Recipe) -> StepsPlan | None:
    """The steps stage of ``recipe``, or None when it has no `steps` section."""
    steps = getattr(recipe, "steps", None)
    if steps is None:
        return None
    return StepsPlan(recipe.dataset, {"segmenter": steps.model_dump(mode="json")}, steps)
