"""Commands that start from a recipe: init (write one), build (run it), serve (schedule it)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import RecipeRootOpt, task_runner_option
from prefmill.errors import PrefmillError
from prefmill.recipes import TEMPLATES
from prefmill.storage import DEFAULT_REF
from prefmill.ui import console


def init(
    template: Annotated[str, typer.Argument(help=f"Template: {', '.join(TEMPLATES)}.")] = "quickstart",
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the recipe.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a recipe template (and its prompt file) to start from."""
    if template not in TEMPLATES:
        raise PrefmillError(f"unknown template '{template}': available: {', '.join(TEMPLATES)}")
    package = resources.files("prefmill.recipes")
    names = [
        n.name
        for n in package.iterdir()
        if n.name.startswith(template + ".") or n.name.startswith(template + "-")
    ]
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(names):
        target = directory / name
        if target.exists() and not force:
            raise PrefmillError(f"{target} exists; pass --force to overwrite it")
        target.write_text(package.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(str(target))
    recipe = directory / f"{template}.yaml"
    console().print(f"wrote {', '.join(written)}\nnext: prefmill build {recipe}")


def build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    root: RecipeRootOpt = None,
    stop_after: Annotated[
        str | None, typer.Option("--stop-after", help="prompts, synthesis, evaluation or instantiation.")
    ] = None,
    ref: Annotated[str, typer.Option("--ref", help="Ref to point at the built versions.")] = DEFAULT_REF,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Re-attempt the failed rows of finished versions.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs.")] = False,
    task_runner: Annotated[str | None, task_runner_option(" (default: the recipe's)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Workers of a local cluster.")] = None,
    runner_address: Annotated[
        str | None, typer.Option("--runner-address", help="Scheduler of a running Dask/Ray cluster.")
    ] = None,
) -> None:
    """Build a dataset: run every stage of RECIPE, reusing finished versions and shards."""
    from prefmill.recipe import STAGES, load_recipe

    if stop_after is not None and stop_after not in STAGES:
        raise typer.BadParameter(
            f"'{stop_after}' is not one of {', '.join(STAGES)}", param_hint="--stop-after"
        )
    parsed = load_recipe(recipe)
    from prefmill.flows.fastpath import unchanged_build
    from prefmill.ui import render_summary

    # every version of the plan already published: the summary, without starting Prefect
    retry = retry_errors or None
    unchanged = unchanged_build(parsed, root, stop_after=stop_after, ref=ref, retry_errors=retry)
    if unchanged is not None:
        console(stderr=True).print(f"[dim]{parsed.dataset}: unchanged, every version is already built[/dim]")
        render_summary(unchanged)
        return
    from prefmill.prefect_logs import mute_prefect_console, route_prefect_logs

    mute_prefect_console()
    from prefmill.flows import run_build
    from prefmill.progress import use_reporter
    from prefmill.ui import progress_reporter

    err = console(stderr=True)  # one console owns the terminal: progress and (--verbose) Prefect's logs
    err.print(f"[dim]building {parsed.dataset} (starting Prefect)...[/dim]")
    with (
        progress_reporter(err) as reporter,
        use_reporter(reporter),
        route_prefect_logs(verbose, err),
    ):
        summary = run_build(
            parsed,
            root,
            stop_after=stop_after,
            ref=ref,
            retry_errors=retry_errors or None,
            task_runner=task_runner,
            workers=workers,
            runner_address=runner_address,
        )
    render_summary(summary)


def serve(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (read anew on every run).")],
    cron: Annotated[str | None, typer.Option("--cron", help="Cron schedule, e.g. '0 3 * * *'.")] = None,
    interval: Annotated[int | None, typer.Option("--interval", help="Or: every N seconds.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Deployment name (default DATASET-build).")
    ] = None,
    root: RecipeRootOpt = None,
    task_runner: Annotated[str | None, task_runner_option()] = None,
) -> None:
    """Register a scheduled build as a Prefect deployment and serve it (needs a Prefect server)."""
    from prefmill.commands.serve import serve as serve_command

    serve_command(recipe, cron=cron, interval=interval, name=name, root=root, task_runner=task_runner)


COMMANDS = (init, build, serve)
