"""The `prefmill` command line.

``prefmill.cli.app`` creates the Typer app and registers the command groups, one module each:
``build`` (init, build, serve), ``inspection`` (tables, show, sql, lineage, diff, gc), ``report``,
``export``, ``train`` (train, iterate). Inspection commands read the store directly and never start
Prefect; `build` imports the flows only when it runs. Errors print as one line without a traceback
(`--debug` shows it). Nothing else in prefmill imports this package: it is the console entry point.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from rich.markup import escape

from prefmill.errors import PrefmillError
from prefmill.ui import console

INTERRUPTED = "interrupted: finished shards are kept; run the same command to resume"


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; prefmill errors print one line, no traceback."""
    from prefmill.cli.app import app

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("PREFMILL_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="prefmill", standalone_mode=False)
        if code == 130:  # Typer returns a Ctrl-C (KeyboardInterrupt) in a command as exit code 130
            console(stderr=True).print(INTERRUPTED)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console(stderr=True).print("aborted")
        return 130
    except KeyboardInterrupt:
        console(stderr=True).print(INTERRUPTED)
        return 130
    except PrefmillError as exc:
        if debug:
            traceback.print_exc()
        console(stderr=True).print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    except Exception as exc:
        # usage errors of the command-line parser (typer vendors click: match by behaviour, not class)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        raise


def main() -> None:
    """Console entry point (`prefmill`, `python -m prefmill`)."""
    sys.exit(run())
