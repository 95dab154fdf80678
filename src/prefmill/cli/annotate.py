"""`prefmill annotate [REF]`: the annotation web app, its annotators, and publishing the verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prefmill.cli.options import DatasetOpt, RootOpt
from prefmill.storage import DEFAULT_REF
from prefmill.ui import console


def annotate(
    ref: Annotated[str, typer.Argument(metavar="[REF]", help="Ref of the build to annotate.")] = DEFAULT_REF,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8080,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to bind (default 127.0.0.1: this machine only)."),
    ] = "127.0.0.1",
    add_annotator: Annotated[
        str | None,
        typer.Option("--add-annotator", help="Create an annotator (or renew their token); print the token."),
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Write the verdicts as a new judgments version and stop.")
    ] = False,
    out_ref: Annotated[
        str, typer.Option("--out-ref", help="--publish: the ref to point at it.")
    ] = "annotated",
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe", help="--publish: also rebuild this recipe's outputs over the new judgments."
        ),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help="pair, point or rubric items.")] = "pair",
    budget: Annotated[int | None, typer.Option("--budget", help="Items humans see (default: all).")] = None,
    select: Annotated[
        str, typer.Option("--select", help="Which items first: uncertainty (active) or random.")
    ] = "uncertainty",
    diversity: Annotated[
        float, typer.Option("--diversity", help="Weight of a prompt's r-th pair: uncertainty * d**r.")
    ] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of random selection and of tie breaks.")] = 0,
    per_item: Annotated[int, typer.Option("--per-item", help="Annotators each item is shown to.")] = 1,
    show_judges: Annotated[
        bool, typer.Option("--show-judges", help="Show judges' scores and others' verdicts before answering.")
    ] = False,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Label a build's items in the browser: pairs, points or rubric scores, under a budget.

    `--add-annotator NAME` prints the token NAME signs in with; `--publish` writes every verdict so far
    as a new `judgments` version (kind 'human') and a ref; the server binds 127.0.0.1 by default."""
    from prefmill.annotate.select import METHODS
    from prefmill.annotate.store import AnnotationStore, annotations_dir
    from prefmill.commands import pick_dataset
    from prefmill.storage import Store

    if mode not in ("pair", "point", "rubric"):
        raise typer.BadParameter(f"'{mode}' is not one of pair, point, rubric", param_hint="--mode")
    if select not in METHODS:
        raise typer.BadParameter(f"'{select}' is not one of {', '.join(METHODS)}", param_hint="--select")
    if not 0.0 <= diversity <= 1.0:
        raise typer.BadParameter("must be in [0, 1]", param_hint="--diversity")
    store = Store(root)
    ds = pick_dataset(store, dataset)
    folder = annotations_dir(store.root, ds)
    if add_annotator is not None:
        token = AnnotationStore(folder).add_annotator(add_annotator)
        console().print(f"annotator {add_annotator}: token {token}")
        console().print("(shown once; run --add-annotator again to issue a new one)")
        return
    if publish:
        _publish(store, folder, ds, ref, out_ref, recipe)
        return
    from prefmill.annotate.server import SessionOptions, is_loopback, prepare, serve

    options = SessionOptions(ref, mode, budget, select, diversity, seed, per_item, show_judges)  # type: ignore[arg-type]
    state, items = prepare(store, ds, options)
    answered = len(state.verdicts)
    console().print(
        f"annotate {ds}@{ref}: {len(items)} {mode} items ({select}"
        f"{f', budget {budget}' if budget else ''}), {per_item} annotator(s) each; "
        f"{answered} verdict(s) kept in {state.store.verdicts_path}"
    )
    if not is_loopback(host):
        console().print(f"[yellow]warning[/]: serving on {host}: anyone who can reach it may try tokens")
    console().print(f"open http://{host}:{port}/ (Ctrl-C stops; answers are saved as they are given)")
    serve(state, host, port)


def _publish(store: object, folder: Path, ds: str, ref: str, out_ref: str, recipe: Path | None) -> None:
    from prefmill.annotate.publish import publish as publish_verdicts
    from prefmill.storage import Store

    assert isinstance(store, Store)
    done = publish_verdicts(store, folder, ds, ref, out_ref)
    console().print(
        f"published judgments@{done.manifest.version}: {done.verdicts} human row(s) from "
        f"{len(done.annotators)} annotator(s) ({', '.join(done.annotators)}) "
        f"over judgments@{done.base.version}; "
        f"ref '{out_ref}'; verdicts file {done.file}"
    )
    if done.skipped_other_build:
        console().print(f"{done.skipped_other_build} verdict(s) on another build's candidates were left out")
    human = done.report.get("human") or {}
    for pair in human.get("pairs", []):
        console().print(f"  kappa {' vs '.join(pair['annotators'])}: {pair['cohen_kappa']} (n={pair['n']})")
    for judge, row in (human.get("judges_vs_humans") or {}).items():
        console().print(f"  {judge} vs humans: agreement {row['agreement']} (n={row['n']})")
    if recipe is not None:
        from prefmill.annotate.server import reinstantiate

        for r in reinstantiate(recipe, store.root, ds, out_ref):
            console().print(f"  {r.table}@{r.version}: {r.rows} rows")
    else:
        console().print("add --recipe RECIPE to rebuild the recipe's outputs over it (the ref gets them)")


COMMANDS = (annotate,)
