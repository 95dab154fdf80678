"""`prefmill train` and `prefmill iterate` (bodies in ``prefmill.commands.train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import JsonFormatOpt, RecipeRootOpt, check_format
from prefmill.trainers.methods import METHODS


def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (its `train:` section, if any).")],
    method: Annotated[str | None, typer.Option("--method", help=", ".join(METHODS) + ".")] = None,
    table: Annotated[str | None, typer.Option("--table", help="Input TABLE or TABLE@VERSION.")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Ref naming the input version.")] = None,
    base_model: Annotated[
        str | None, typer.Option("--base-model", help="smollm2, a folder, checkpoints@V.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps.")] = None,
    eval_n: Annotated[
        int | None, typer.Option("--eval-n", help="Held-out problems (0: no evaluation).")
    ] = None,
    root: RecipeRootOpt = None,
    fmt: JsonFormatOpt = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and TRL's logs.")] = False,
) -> None:
    """Train a model with TRL on a table of the recipe's dataset; evaluate it before and after."""
    from prefmill.commands.train import train_command

    check_format(fmt, ("table", "json"))
    train_command(
        recipe,
        root=root,
        method=method,
        table=table,
        ref=ref,
        base_model=base_model,
        max_steps=max_steps,
        eval_n=eval_n,
        fmt=fmt,
        verbose=verbose,
    )


def iterate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (`train:` and `iterate:` sections).")],
    rounds: Annotated[int | None, typer.Option("--rounds", help="Build + train rounds.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="dpo (iterative DPO) or spin.")] = None,
    root: RecipeRootOpt = None,
    fmt: JsonFormatOpt = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and TRL's logs.")] = False,
) -> None:
    """The closed loop: build -> train -> build with the new policy, for a number of rounds."""
    from prefmill.commands.train import iterate_command

    check_format(fmt, ("table", "json"))
    iterate_command(recipe, root=root, rounds=rounds, mode=mode, fmt=fmt, verbose=verbose)


COMMANDS = (train, iterate)
