"""`prefmill export TABLE[@VERSION] --format F --out DIR`: write a table version for a training library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import DatasetOpt, RefOpt, RootOpt, resolve
from prefmill.commands import pick_dataset
from prefmill.exports import CONTAINERS, FORMATS, default_table, export_table
from prefmill.storage import DEFAULT_REF, Store
from prefmill.ui import console


def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (required).")],
    spec: Annotated[
        str | None,
        typer.Argument(metavar="[TABLE[@VERSION]]", help="Table and optional version (default: by format)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")] = "rows",
    to: Annotated[
        list[str] | None,
        typer.Option("--to", help=f"Container, repeatable: {', '.join(CONTAINERS)} (default parquet)."),
    ] = None,
    conversational: Annotated[
        bool, typer.Option("--conversational", help="TRL's conversational format (role/content lists).")
    ] = False,
    where: Annotated[str | None, typer.Option("--where", "-w", help="SQL condition on the rows.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output folder.")
    ] = False,
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", help="Also push to this Hub dataset repo ($HF_TOKEN).")
    ] = None,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
) -> None:
    """Export a table version in a training library's format (TRL), with a dataset card README.md."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"'{fmt}' is not one of {', '.join(FORMATS)}", param_hint="--format")
    store = Store(root)
    ds = pick_dataset(store, dataset)
    m = resolve(store, ds, spec or default_table(fmt), ref)
    result = export_table(
        store,
        m,
        fmt=fmt,
        out=out,
        to=tuple(to or ["parquet"]),
        conversational=conversational,
        where=where,
        overwrite=overwrite,
        hub_repo=push_to_hub,
    )
    console().print(
        f"exported {m.table}@{m.version} as {fmt}: {result.rows:,} rows -> {result.out} "
        f"({', '.join(result.files)})" + (f"; pushed to {result.pushed_to}" if result.pushed_to else "")
    )


COMMANDS = (export,)
