"""`prefmill serve RECIPE --cron "..."`: register a Prefect deployment of the build and serve it.

Schedules are kept and fired by a Prefect server, so the command needs one (``prefect server start``;
``PREFECT_API_URL`` pointing at it). The serving process polls the server for due runs and runs each
as ``prefmill-scheduled-build``, which reads the recipe file anew every time: prompts added to its
sources since the last run are built incrementally.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from prefmill.errors import PrefmillError, RecipeError


class ServeError(PrefmillError):
    """A schedule cannot be served as asked."""


NO_SERVER = (
    "cron schedules need a Prefect server: start one (`prefect server start`, or infra/compose.yaml) and "
    "set PREFECT_API_URL=http://127.0.0.1:4200/api (see infra/README.md); the temporary API a build "
    "starts on its own stops with the process and fires no schedule"
)


def api_url() -> str | None:
    """The configured Prefect API (environment or Prefect profile), or None."""
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


def serve(
    recipe_path: Path,
    *,
    cron: str | None,
    interval: int | None,
    name: str | None,
    root: str | None,
    task_runner: str | None,
    limit: int | None = None,
) -> None:
    """Validate, then block serving the deployment (Ctrl-C stops; the schedule is paused)."""
    from prefmill.recipe import load_recipe

    if not cron and not interval:
        raise ServeError("give a schedule: --cron '0 * * * *' (cron syntax) or --interval SECONDS")
    if cron:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(cron, datetime.now())
        except CronSimError as exc:
            raise ServeError(f"--cron '{cron}' is not a cron expression ({exc}); e.g. '0 3 * * *'") from None
    recipe_file = recipe_path.expanduser().resolve()
    if not recipe_file.is_file():
        raise RecipeError(f"recipe not found: {recipe_file}")
    recipe = load_recipe(recipe_file)
    if not api_url():
        raise ServeError(NO_SERVER)
    from prefmill.flows.scheduled import scheduled_build

    scheduled_build.serve(
        name=name or f"{recipe.dataset}-build",
        cron=cron,
        interval=interval,
        parameters={"recipe_path": str(recipe_file), "root": root, "task_runner": task_runner},
        description=f"prefmill build of {recipe_file}",
        tags=["prefmill", recipe.dataset],
        limit=limit,
    )
