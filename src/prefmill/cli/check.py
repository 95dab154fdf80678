"""`prefmill check RECIPE`: validate a recipe and what it names, and print the build's plan, without
starting Prefect or loading a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.storage.hints import command
from prefmill.ui import console, render_records


def check(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")]) -> None:
    """Validate RECIPE and every file, SQL, template and engine spec it names; print the plan (stages,
    shards, expected model calls). Exit 1 with a one-line error on bad input."""
    from prefmill.commands.check import plan_of
    from prefmill.recipe import load_recipe

    parsed = load_recipe(recipe)
    stages = plan_of(parsed)
    rows = [
        {
            "stage": s.stage,
            "table": s.table,
            "shards": s.shards,
            "rows": "" if s.rows is None else f"{s.rows:,}",
            "model calls": "" if s.calls is None else f"{s.calls:,}",
            "engines": ", ".join(s.engines),
            "note": s.note,
        }
        for s in stages
    ]
    render_records(rows, "table", title=f"plan of {parsed.dataset} ({recipe})")
    total = sum(s.calls or 0 for s in stages)
    console().print(
        f"ok: {recipe} is valid; about {total:,} model calls (upper bound); "
        f"next: {command('build', str(recipe))} (add --root to build elsewhere than the default root)"
    )


COMMANDS = (check,)
