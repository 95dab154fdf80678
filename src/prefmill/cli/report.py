"""`prefmill report [REF]` (the HTML page of a build) and `prefmill report fidelity [REF]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import DatasetOpt, RootOpt, check_format
from prefmill.commands import pick_dataset
from prefmill.storage import DEFAULT_REF, Store
from prefmill.ui import console, human_bytes


def report(
    ref: Annotated[str, typer.Argument(metavar="[REF]", help="Ref to report on.")] = DEFAULT_REF,
    target: Annotated[
        str | None,
        typer.Argument(metavar="[FIDELITY_REF]", help="After `fidelity`: a ref or judgments@VERSION."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    sample_pairs: Annotated[int, typer.Option("--sample-pairs", help="Pairs shown side by side.")] = 8,
    bins: Annotated[int, typer.Option("--bins", help="Bins of the score and margin histograms.")] = 20,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="report fidelity: table or json.")] = "table",
) -> None:
    """Write one self-contained HTML page about a build: charts of its tables (opens offline).

    `prefmill report fidelity [REF]` prints the judges' fidelity report instead."""
    if ref == "fidelity":
        from prefmill.commands.fidelity import show_fidelity

        show_fidelity(
            target or DEFAULT_REF, root=root, dataset=dataset, fmt=check_format(fmt, ("table", "json"))
        )
        return
    if target is not None:
        raise typer.BadParameter(
            f"unexpected argument '{target}' (only `report fidelity` takes a second one)"
        )
    from prefmill.commands.report import write_report

    store = Store(root)
    ds = pick_dataset(store, dataset)
    path = write_report(store, ds, ref, out, sample_pairs=sample_pairs, bins=bins)
    console().print(f"wrote {path} ({human_bytes(path.stat().st_size)}): open it in a browser")


COMMANDS = (report,)
