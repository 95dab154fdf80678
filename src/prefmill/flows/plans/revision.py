"""The revision stage's plan (critique-revise judges): what decides the revised `candidates` version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefmill.flows.plans.evaluation import EvaluationPlan, judge_configs
from prefmill.recipe import Recipe
from prefmill.tasks.evaluation.judges.critique_revise import CritiqueReviseJudge
from prefmill.tasks.evaluation.judges.registry import judge_traits

#: Bump when the revision rows for the same candidates change meaning.
REVISION_CODE_VERSION = "1"


def is_reviser(judge: Any) -> bool:
    """A judge that revises candidates before the judges run."""
    return judge_traits(judge).output == "candidates"


def revisers(recipe: Recipe) -> list[CritiqueReviseJudge]:
    return [j for j in judge_configs(recipe) if is_reviser(j)]


@dataclass(frozen=True)
class RevisionPlan:
    """The revision stage, resolved once per build: ``config`` decides the new candidates version;
    ``revisers`` are the critique-revise judges with absolute template paths."""

    dataset: str
    config: dict[str, Any]
    revisers: tuple[CritiqueReviseJudge, ...]
    prices: dict[str, Any] | None = None  # the recipe's, for the revisers' cost (not in ``config``)


def plan_revision(recipe: Recipe, evaluation: EvaluationPlan) -> RevisionPlan | None:
    """The revision stage of ``recipe``, or None when it has no critique_revise judge."""
    configs = [j for j in evaluation.judges if is_reviser(j)]
    if not configs:
        return None
    llm = evaluation.config.get("llm", {})
    config = {
        "revisers": [c.model_dump(mode="json") for c in recipe.evaluation.judges if is_reviser(c)],
        "templates": {c.judge_name: llm.get(c.judge_name) for c in configs},
    }
    return RevisionPlan(recipe.dataset, config, tuple(configs), evaluation.prices)  # type: ignore[arg-type]
