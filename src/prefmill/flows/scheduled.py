"""The flow a deployment runs on a schedule: read the recipe file anew (its prompt sources may have
grown: the build is then incremental) and build it."""

from __future__ import annotations

from prefect import flow

from prefmill.flows.build import run_build
from prefmill.flows.common import STAGE_FLOW, log
from prefmill.recipe import load_recipe


@flow(name="prefmill-scheduled-build", **STAGE_FLOW)
def scheduled_build(recipe_path: str, root: str | None = None, task_runner: str | None = None) -> dict:
    """Build the recipe at ``recipe_path`` (its current content) and return the versions made."""
    recipe = load_recipe(recipe_path)
    summary = run_build(recipe, root, task_runner=task_runner)
    versions = {t.table: t.version for t in summary.tables}
    built = [t.table for t in summary.tables if not t.cached]
    log().info("scheduled build of %s: built %s", recipe.dataset, ", ".join(built) or "nothing (all cached)")
    return versions
