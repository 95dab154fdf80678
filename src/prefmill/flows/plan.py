"""A build's plan: the recipe resolved once, at the start of a build, into what each stage runs.

Per stage its config (what decides its version: ``config``) and the settings its shards run with
(small frozen values: each shard task receives its stage's slice, never the ``Recipe``). Resolving
also checks what can be checked up front (files exist and are readable, custom SQL loads), so a bad
recipe fails before any work.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefmill.flows.evaluation import EvaluationPlan, plan_evaluation
from prefmill.flows.instantiation import OutputPlan, plan_instantiation
from prefmill.flows.prompts import PromptsPlan, plan_prompts
from prefmill.flows.revision import RevisionPlan, plan_revision
from prefmill.flows.synthesis import SynthesisPlan, plan_synthesis
from prefmill.recipe import Recipe


@dataclass(frozen=True)
class BuildPlan:
    """Every stage of one build, resolved: ``revision`` is None without a critique_revise judge."""

    dataset: str
    prompts: PromptsPlan
    synthesis: SynthesisPlan
    revision: RevisionPlan | None
    evaluation: EvaluationPlan
    outputs: tuple[OutputPlan, ...]


def resolve_plan(recipe: Recipe) -> BuildPlan:
    """Resolve ``recipe`` into the plan of a build (raises the recipe's first input error)."""
    prompts = plan_prompts(recipe)
    outputs = plan_instantiation(recipe)
    evaluation = plan_evaluation(recipe)
    return BuildPlan(
        dataset=recipe.dataset,
        prompts=prompts,
        synthesis=plan_synthesis(recipe),
        revision=plan_revision(recipe, evaluation),
        evaluation=evaluation,
        outputs=outputs,
    )
