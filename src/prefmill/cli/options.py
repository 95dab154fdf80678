"""Options, checks and spec parsing that several command groups share."""

from __future__ import annotations

from typing import Annotated

import typer

from prefmill.storage import Manifest, Store
from prefmill.task_runners import TASK_RUNNERS
from prefmill.ui import FORMATS

RootOpt = Annotated[
    str | None,
    typer.Option("--root", envvar="PREFMILL_HOME", help="Storage root (default ./prefmill-data)."),
]
#: --root of the commands that read a recipe (which names a root of its own).
RecipeRootOpt = Annotated[str | None, typer.Option("--root", help="Storage root; overrides the recipe.")]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", "-d", envvar="PREFMILL_DATASET", help="Dataset (default: the only one)."),
]
RefOpt = Annotated[str, typer.Option("--ref", help="Ref whose versions are used by default.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
JsonFormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]

# -- --task-runner (build, serve) ---------------------------------------------------------------

#: The task runners --task-runner names in its help (the task_runners table).
_TASK_RUNNER_CHOICES = ", ".join(TASK_RUNNERS[:-1]) + " or " + TASK_RUNNERS[-1]


def task_runner_option(default_note: str = "") -> typer.models.OptionInfo:
    """The --task-runner option; ``default_note`` follows the choices in the help text."""
    return typer.Option("--task-runner", help=f"{_TASK_RUNNER_CHOICES}{default_note}.")


# -- checks -------------------------------------------------------------------------------------


def check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    """``fmt`` when it is one of ``allowed``, else a usage error naming --format."""
    if fmt not in allowed:
        raise typer.BadParameter(f"'{fmt}' is not one of {', '.join(allowed)}", param_hint="--format")
    return fmt


def split_spec(spec: str) -> tuple[str, str | None]:
    """``TABLE[@VERSION]`` -> (table, version or None)."""
    table, _, version = spec.partition("@")
    if not table:
        raise typer.BadParameter(f"'{spec}' is not TABLE or TABLE@VERSION")
    return table, version or None


def resolve(store: Store, dataset: str, spec: str, ref: str) -> Manifest:
    """The manifest ``TABLE[@VERSION]`` names (the ref's version when no version is given)."""
    table, version = split_spec(spec)
    return store.resolve_version(dataset, table, version, ref)
