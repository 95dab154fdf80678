"""An unchanged build, found without Prefect: every version of the plan already published.

``plan_versions`` resolves the build's plan (``flows.plan``: the same configs, code versions and
parents the stages use, so the same version ids) and looks each version up in the store, stage by
stage, as the build would; ``unchanged_build`` then does what the build does with an all-cached plan
(the fidelity thresholds, the ref, the recipe's exports) and returns its summary. Nothing here imports
Prefect, torch or an engine: ``prefmill build`` calls it first and starts Prefect only when some
version is missing (or ``--retry-errors`` has failed rows to re-attempt).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prefmill.flows.plan import BuildPlan, preflight
from prefmill.flows.plans.revision import REVISION_CODE_VERSION
from prefmill.flows.plans.steps import STEPS_CODE_VERSION
from prefmill.flows.results import BuildSummary, TableResult, latest_retry, log
from prefmill.recipe import STAGES, Recipe
from prefmill.storage import DEFAULT_REF, Manifest, Parent, Store, version_id
from prefmill.storage.hints import command
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION
from prefmill.tasks.instantiation.run import INSTANTIATION_CODE_VERSION
from prefmill.tasks.prompts.build import PROMPTS_CODE_VERSION
from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION


@dataclass(frozen=True)
class PlanVersions:
    """The published versions an unchanged build reuses, in the order the build lists them."""

    manifests: tuple[Manifest, ...]

    def version(self, table: str) -> str:
        return next(m.version for m in reversed(self.manifests) if m.table == table)


def _find(
    store: Store, ds: str, table: str, stage: str, code: str, config: dict[str, Any], parents: list[Parent]
) -> Manifest | None:
    return store.find_manifest(ds, table, version_id(table, stage, code, config, parents))


def plan_versions(
    plan: BuildPlan, store: Store, *, stop_after: str | None = None, retry_errors: bool = False
) -> PlanVersions | None:
    """Every version the build of ``plan`` would make, if each is already published (None as soon
    as one is not, or when ``retry_errors`` would re-attempt the candidates' failed rows)."""
    ds = plan.dataset
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    found: list[Manifest] = []
    config = plan.prompts.config
    for table in ("prompts_rejected", "prompts"):
        if (m := _find(store, ds, table, "prompts", PROMPTS_CODE_VERSION, config, [])) is None:
            return None
        found.append(m)
    prompts = Parent("prompts", found[-1].version)
    if last >= 1:
        m = _find(
            store, ds, "candidates", "synthesis", SYNTHESIS_CODE_VERSION, plan.synthesis.config, [prompts]
        )
        if m is None:
            return None
        m = latest_retry(store, m)  # a retry supersedes the version it retried
        if retry_errors and m.totals.get("errors"):
            return None
        found.append(m)
    if last >= 2:
        if plan.revision is not None:
            parents = [prompts, Parent("candidates", found[-1].version)]
            m = _find(
                store, ds, "candidates", "revision", REVISION_CODE_VERSION, plan.revision.config, parents
            )
            if m is None:
                return None
            found.append(m)
        candidates = Parent("candidates", found[-1].version)
        parents = [prompts, candidates]
        if plan.steps is not None:  # the steps of the candidates, a parent of the judgments
            config = plan.steps.config
            if (m := _find(store, ds, "steps", "steps", STEPS_CODE_VERSION, config, [candidates])) is None:
                return None
            found.append(m)
            parents.append(Parent("steps", m.version))
        m = _find(
            store, ds, "judgments", "evaluation", EVALUATION_CODE_VERSION, plan.evaluation.config, parents
        )
        if m is None:
            return None
        found.append(m)
    if last >= 3:
        cands = next(m for m in reversed(found) if m.table == "candidates")
        parents = [prompts, Parent("candidates", cands.version), Parent("judgments", found[-1].version)]
        for out in plan.outputs:
            m = _find(store, ds, out.output, "instantiation", INSTANTIATION_CODE_VERSION, out.config, parents)
            if m is None:
                return None
            found.append(m)
    return PlanVersions(tuple(found))


def versions_stage(table: str) -> str:
    """The stage that makes ``table`` (for messages)."""
    from prefmill.storage.tables import TABLES

    return TABLES[table].stage if table in TABLES else table


def unchanged_build(
    recipe: Recipe,
    root: str | None = None,
    *,
    stop_after: str | None = None,
    ref: str = DEFAULT_REF,
    retry_errors: bool | None = None,
) -> BuildSummary | None:
    """The summary of building ``recipe`` when every version of its plan is already published: the
    fidelity thresholds are enforced, ``ref`` is written and the recipe's exports run, as the build
    does; None when some version is missing (the build has work to do). Input errors raise as the
    build's would (the plan is resolved the same way)."""
    started = time.perf_counter()
    target = recipe.storage_root(root)
    plan = preflight(recipe, target)  # the checks and the plan of the build itself
    store = Store(target)
    retry = recipe.retry_errors if retry_errors is None else retry_errors
    versions = plan_versions(plan, store, stop_after=stop_after, retry_errors=retry)
    if versions is None:
        return None
    summary = BuildSummary(plan.dataset, store.root, ref)
    summary.tables = [TableResult.of(store, m, cached=True, started=started) for m in versions.manifests]
    from prefmill.flows.budget import check_error_budget, error_budget

    with error_budget(recipe.max_error_rate):  # a rerun of a failed build fails as the build did
        for t in summary.tables:
            check_error_budget(versions_stage(t.table), [t])
    judgments = next((m for m in versions.manifests if m.table == "judgments"), None)
    if judgments is not None and (report := judgments.stats.get("fidelity")):
        from prefmill.tasks.evaluation.fidelity import enforce

        where = f"judgments@{judgments.version}"
        hint = command("report", "fidelity", where, root=store.root, dataset=recipe.dataset)
        enforce(report, plan.evaluation.fidelity, where, hint)
    store.write_ref(
        recipe.dataset,
        ref,
        {t.table: t.version for t in summary.tables},
        info={"flow_run_id": None, "stopped_after": stop_after, "unchanged": True},
    )
    if recipe.export and stop_after is None:
        from prefmill.flows.export import run_recipe_exports

        summary.exports = run_recipe_exports(recipe, store, {t.table: t.version for t in summary.tables})
    summary.seconds = time.perf_counter() - started
    summary.stopped_after = stop_after
    log().info("build: %s unchanged (%d versions published)", recipe.dataset, len(summary.tables))
    return summary
