"""A build's plan: the recipe resolved once, at the start of a build, into what each stage runs.

Per stage its config (what decides its version: ``config``) and the settings its shards run with
(small frozen values: each shard task receives its stage's slice, never the ``Recipe``). Resolving
also checks what can be checked up front (files exist and are readable, custom SQL loads), so a bad
recipe fails before any work. Nothing here imports Prefect (``flows.plans``), so an unchanged
build is found without starting it (``flows.fastpath``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prefmill.engines.registry import parse_spec
from prefmill.exports import default_table
from prefmill.exports.formats import format_sql, get_format
from prefmill.flows.plans.evaluation import EvaluationPlan, check_judges_config, plan_evaluation
from prefmill.flows.plans.instantiation import OutputPlan, plan_instantiation
from prefmill.flows.plans.prompts import PromptsPlan, plan_prompts
from prefmill.flows.plans.revision import RevisionPlan, plan_revision
from prefmill.flows.plans.steps import StepsPlan, plan_steps
from prefmill.flows.plans.synthesis import SynthesisPlan, plan_synthesis
from prefmill.flows.startup import check_root
from prefmill.recipe import Recipe
from prefmill.storage import Store


@dataclass(frozen=True)
class BuildPlan:
    """Every stage of one build, resolved: ``revision`` is None without a critique_revise judge."""

    dataset: str
    prompts: PromptsPlan
    synthesis: SynthesisPlan
    revision: RevisionPlan | None
    evaluation: EvaluationPlan
    outputs: tuple[OutputPlan, ...]
    steps: StepsPlan | None = None  # None without a `steps` section


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
        steps=plan_steps(recipe),
    )


def preflight(recipe: Recipe, root: str) -> BuildPlan:
    """Fail before any work on what can be checked up front: the storage root, prompt and offline
    files, custom SQL files, human verdict files, the engine specs; returns the build's plan."""
    check_root(root)  # a file, under a file, unwritable: one line, before Prefect starts
    Store(root)
    plan = resolve_plan(recipe)
    for spec in recipe.synthesis.engine_specs():
        parse_spec(spec)
    for spec in recipe.export:
        format_sql(get_format(spec.format), spec.table or default_table(spec.format), spec.conversational)
    check_judges_config(recipe)
    return plan
