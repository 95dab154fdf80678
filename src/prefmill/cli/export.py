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
        bool | None,
        typer.Option(
            "--conversational/--standard",
            help="TRL's conversational format (role/content lists) or the standard text one "
            "(default: conversational when the prompts' chats are in the lineage).",
            show_default=False,
        ),
    ] = None,
    where: Annotated[str | None, typer.Option("--where", "-w", help="SQL condition on the rows.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output folder.")
    ] = False,
    test_size: Annotated[
        float | None,
        typer.Option("--test-size", help="Also a test split: a share (< 1) or number of prompts, by prompt."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the train/test split.")] = 0,
    license_id: Annotated[
        str | None, typer.Option("--license", help="License id for the card, e.g. apache-2.0.")
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Language code for the card, repeatable.")
    ] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            help="Also push to this Hub dataset repo (token: `hf auth login` or $HF_TOKEN, checked first).",
        ),
    ] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the Hub repo private.")] = False,
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
        private=private,
        test_size=test_size,
        seed=seed,
        license=license_id,
        language=language,
    )
    splits = ", ".join(f"{k} {v:,}" for k, v in result.splits.items()) if len(result.splits) > 1 else ""
    console().print(
        f"exported {m.table}@{m.version} as {fmt}"
        f" ({'conversational' if result.conversational else 'standard'}): {result.rows:,} rows"
        + (f" ({splits})" if splits else "")
        + f" -> {result.out} ({', '.join(result.files)})"
        + (f"; pushed to {result.pushed_to}" if result.pushed_to else "")
    )


COMMANDS = (export,)
