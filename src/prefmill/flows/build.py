"""The `build` flow: prompts -> candidates -> judgments -> pairs / points / lists, then a ref."""

from __future__ import annotations

import time

from prefect import flow
from prefect import tags as prefect_tags

from prefmill.flows.budget import guarded
from prefmill.flows.common import STAGE_FLOW, current_flow_run_id, log
from prefmill.flows.evaluation import evaluation_flow
from prefmill.flows.export import run_recipe_exports
from prefmill.flows.instantiation import instantiation_flow
from prefmill.flows.naming import run_tags
from prefmill.flows.plan import BuildPlan, preflight, resolve_plan
from prefmill.flows.prompts import prompts_flow
from prefmill.flows.results import BuildSummary, pricing
from prefmill.flows.revision import revision_flow
from prefmill.flows.runners import RunnerChoice, runner_session
from prefmill.flows.startup import mark_stale_runs, start_local_api
from prefmill.flows.steps import steps_flow
from prefmill.flows.synthesis import synthesis_flow
from prefmill.recipe import STAGES, Recipe
from prefmill.storage import DEFAULT_REF, Store


@flow(name="prefmill-build", **STAGE_FLOW)
@guarded
def build_flow(
    recipe: Recipe,
    root: str,
    stop_after: str | None = None,
    ref: str = DEFAULT_REF,
    retry_errors: bool = False,
    plan: BuildPlan | None = None,
) -> BuildSummary:
    """Run the stages in order (stopping after ``stop_after`` if given) and point ``ref`` at the result.

    The recipe is resolved once, here (or by the caller: ``plan``), into the plan every stage runs."""
    started = time.perf_counter()
    plan = plan or resolve_plan(recipe)
    store = Store(root)
    ds = plan.dataset
    summary = BuildSummary(ds, store.root, ref, flow_run_id=current_flow_run_id())
    summary.remote, summary.unpriced = pricing(recipe)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1

    summary.tables += prompts_flow(plan.prompts, root)
    man = {"prompts": store.manifest(ds, "prompts", summary.version("prompts"))}
    if last >= 1:
        summary.tables.append(synthesis_flow(plan.synthesis, root, man["prompts"], retry_errors=retry_errors))
        man["candidates"] = store.manifest(ds, "candidates", summary.version("candidates"))
    if last >= 2:
        # critique-revise judges first add revisions: a new candidates version that the judges judge
        if plan.revision and (
            revised := revision_flow(plan.revision, root, man["prompts"], man["candidates"])
        ):
            summary.tables.append(revised)
            man["candidates"] = store.manifest(ds, "candidates", revised.version)
        if plan.steps and (steps := steps_flow(plan.steps, root, man["candidates"])):
            summary.tables.append(steps)  # the steps of the candidates the judges judge
            man["steps"] = store.manifest(ds, "steps", steps.version)
        summary.tables.append(
            evaluation_flow(plan.evaluation, root, man["prompts"], man["candidates"], man.get("steps"))
        )
        man["judgments"] = store.manifest(ds, "judgments", summary.version("judgments"))
    if last >= 3:
        summary.tables += instantiation_flow(
            plan.outputs, root, ds, man["prompts"], man["candidates"], man["judgments"]
        )

    store.write_ref(
        recipe.dataset,
        ref,
        {t.table: t.version for t in summary.tables},
        info={"flow_run_id": summary.flow_run_id, "stopped_after": stop_after},
    )
    if recipe.export and stop_after is None:
        summary.exports = run_recipe_exports(recipe, store, {t.table: t.version for t in summary.tables})
    summary.seconds = time.perf_counter() - started
    summary.stopped_after = stop_after
    log().info("build: %s finished in %.1f s", recipe.dataset, summary.seconds)
    return summary


def run_build(
    recipe: Recipe,
    root: str | None = None,
    *,
    stop_after: str | None = None,
    ref: str = DEFAULT_REF,
    retry_errors: bool | None = None,
    task_runner: str | None = None,
    workers: int | None = None,
    runner_address: str | None = None,
) -> BuildSummary:
    """Build ``recipe`` into ``root`` (default: the recipe's root, $PREFMILL_HOME, ./prefmill-data).

    ``retry_errors`` (default: the recipe's ``retry_errors``) re-attempts the failed rows of an
    existing candidates version in a new version instead of reusing it as it is. ``task_runner``,
    ``workers`` and ``runner_address`` (default: the recipe's) choose where shard tasks run."""
    if stop_after is not None and stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {', '.join(STAGES)}")
    target = recipe.storage_root(root)
    plan = preflight(recipe, target)
    retry = recipe.retry_errors if retry_errors is None else retry_errors
    choice = RunnerChoice(
        task_runner or recipe.task_runner,
        runner_address or recipe.runner_address,
        workers or recipe.workers,
        max_shards_in_flight=recipe.max_shards_in_flight,
    )
    start_local_api()
    tags = run_tags(recipe, target)
    mark_stale_runs(tags)  # runs of this build that a killed process left Running
    with prefect_tags(*tags), runner_session(choice, target):
        return build_flow(recipe, target, stop_after=stop_after, ref=ref, retry_errors=retry, plan=plan)
