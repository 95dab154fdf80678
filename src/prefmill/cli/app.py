"""The Typer app: creates it and registers every command group (one module each, in this order)."""

from __future__ import annotations

from typing import Annotated

import typer

from prefmill.cli import annotate, build, check, export, imports, inspection, report, train

#: Command groups; each module lists its commands in ``COMMANDS`` (the function name is the command).
GROUPS = (build, inspection, report, export, train, annotate, imports, check)

app = typer.Typer(
    name="prefmill",
    help="Turn prompts into versioned preference datasets (prompts -> candidates -> judgments -> "
    "pairs / points / lists).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from prefmill import __version__

        typer.echo(f"prefmill {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print prefmill's version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Global options (``--debug`` is honoured anywhere on the command line)."""


for _group in GROUPS:
    for _command in _group.COMMANDS:
        app.command()(_command)
