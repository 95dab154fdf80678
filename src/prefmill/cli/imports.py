"""Commands that bring existing data into the store: import-pairs (a labelled pairwise dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import RootOpt
from prefmill.storage.hints import command
from prefmill.ui import console


def import_pairs(
    path: Annotated[Path, typer.Argument(help="JSONL, CSV or Parquet of labelled pairs.")],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset to write them to.")],
    root: RootOpt = None,
    annotator: Annotated[str, typer.Option("--annotator", help="Judge name: human:ANNOTATOR.")] = "labels",
    ref: Annotated[str, typer.Option("--ref", help="Ref to point at the imported versions.")] = "labelled",
) -> None:
    """Import labelled pairs {prompt, response_a, response_b, label} or {prompt, chosen, rejected} as
    prompts, candidates and human pair verdicts in one step (gold for `report fidelity`). Multi-turn
    data too: prompt as messages and chosen/rejected as message lists (TRL conversational), or
    HH-style whole conversations sharing every turn but the last reply."""
    from prefmill.commands.import_pairs import import_pairs as run_import

    done = run_import(path, dataset=dataset, root=root, annotator=annotator, ref=ref)
    for table, (version, rows) in done["tables"].items():
        console().print(f"{table}@{version}: {rows:,} rows")
    console().print(
        f"ref '{done['ref']}' of dataset '{dataset}'; next: "
        f"`{command('report', 'fidelity', done['ref'], root=root, dataset=dataset)}`, "
        f"or `evaluation.fidelity.calibration: {path}` in a recipe to measure a judge on these pairs"
    )


COMMANDS = (import_pairs,)
