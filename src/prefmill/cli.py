"""The `prefmill` command line.

Inspection commands (tables, show, sql, lineage, diff, gc) read the store directly and never start
Prefect; `build` imports the flows only when it runs. Errors print as one line without a traceback
(`--debug` shows it).
"""

from __future__ import annotations

import os
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from prefmill.commands import pick_dataset as _dataset
from prefmill.errors import PrefmillError
from prefmill.storage import DEFAULT_REF, ID_COLUMNS, Manifest, Store
from prefmill.storage.tables import order_key
from prefmill.task_runners import TASK_RUNNERS
from prefmill.ui import FORMATS, console, human_bytes, render_records, render_rows

_RUNNERS = ", ".join(TASK_RUNNERS[:-1]) + f" or {TASK_RUNNERS[-1]}"  # --task-runner choices
app = typer.Typer(
    name="prefmill",
    help="Turn prompts into versioned preference datasets (prompts -> candidates -> judgments -> "
    "pairs / points / lists).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Global options (``--debug`` is honoured anywhere on the command line)."""


TEMPLATES = ("quickstart", "strategies")

RootOpt = Annotated[
    str | None,
    typer.Option("--root", envvar="PREFMILL_HOME", help="Storage root (default ./prefmill-data)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", "-d", envvar="PREFMILL_DATASET", help="Dataset (default: the only one)."),
]
RefOpt = Annotated[str, typer.Option("--ref", help="Ref whose versions are used by default.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
JsonFormatOpt = Annotated[str, typer.Option("--format", "-f", help="table or json.")]


def _check_format(fmt: str, allowed: tuple[str, ...] = FORMATS) -> str:
    if fmt not in allowed:
        raise typer.BadParameter(f"'{fmt}' is not one of {', '.join(allowed)}", param_hint="--format")
    return fmt


def _store(root: str | None) -> Store:
    return Store(root)


def _split_spec(spec: str) -> tuple[str, str | None]:
    table, _, version = spec.partition("@")
    if not table:
        raise typer.BadParameter(f"'{spec}' is not TABLE or TABLE@VERSION")
    return table, version or None


def _resolve(store: Store, dataset: str, spec: str, ref: str) -> Manifest:
    table, version = _split_spec(spec)
    return store.resolve_version(dataset, table, version, ref)


# -- init and build ----------------------------------------------------------------------------


@app.command()
def init(
    template: Annotated[str, typer.Argument(help="Template name.")] = "quickstart",
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the recipe.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a recipe template (and its prompt file) to start from."""
    if template not in TEMPLATES:
        raise PrefmillError(f"unknown template '{template}': available: {', '.join(TEMPLATES)}")
    package = resources.files("prefmill.recipes")
    names = [
        n.name
        for n in package.iterdir()
        if n.name.startswith(template + ".") or n.name.startswith(template + "-")
    ]
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(names):
        target = directory / name
        if target.exists() and not force:
            raise PrefmillError(f"{target} exists; pass --force to overwrite it")
        target.write_text(package.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(str(target))
    recipe = directory / f"{template}.yaml"
    console().print(f"wrote {', '.join(written)}\nnext: prefmill build {recipe}")


@app.command()
def build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    root: Annotated[str | None, typer.Option("--root", help="Storage root; overrides the recipe.")] = None,
    stop_after: Annotated[
        str | None, typer.Option("--stop-after", help="prompts, synthesis, evaluation or instantiation.")
    ] = None,
    ref: Annotated[str, typer.Option("--ref", help="Ref to point at the built versions.")] = DEFAULT_REF,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Re-attempt the failed rows of finished versions.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs.")] = False,
    task_runner: Annotated[
        str | None, typer.Option("--task-runner", help=f"{_RUNNERS} (default: the recipe's).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Workers of a local cluster.")] = None,
    runner_address: Annotated[
        str | None, typer.Option("--runner-address", help="Scheduler of a running Dask/Ray cluster.")
    ] = None,
) -> None:
    """Build a dataset: run every stage of RECIPE, reusing finished versions and shards."""
    from prefmill.recipe import STAGES, load_recipe

    if stop_after is not None and stop_after not in STAGES:
        raise typer.BadParameter(
            f"'{stop_after}' is not one of {', '.join(STAGES)}", param_hint="--stop-after"
        )
    parsed = load_recipe(recipe)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from prefmill.flows import run_build
    from prefmill.progress import use_reporter
    from prefmill.ui import progress_reporter, render_summary

    console(stderr=True).print(f"[dim]building {parsed.dataset} (starting Prefect)...[/dim]")
    with progress_reporter() as reporter, use_reporter(reporter):
        summary = run_build(
            parsed,
            root,
            stop_after=stop_after,
            ref=ref,
            retry_errors=retry_errors or None,
            task_runner=task_runner,
            workers=workers,
            runner_address=runner_address,
        )
    render_summary(summary)


@app.command()
def serve(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (read anew on every run).")],
    cron: Annotated[str | None, typer.Option("--cron", help="Cron schedule, e.g. '0 3 * * *'.")] = None,
    interval: Annotated[int | None, typer.Option("--interval", help="Or: every N seconds.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Deployment name (default DATASET-build).")
    ] = None,
    root: Annotated[str | None, typer.Option("--root", help="Storage root; overrides the recipe.")] = None,
    task_runner: Annotated[str | None, typer.Option("--task-runner", help=f"{_RUNNERS}.")] = None,
) -> None:
    """Register a scheduled build as a Prefect deployment and serve it (needs a Prefect server)."""
    from prefmill.commands.serve import serve as serve_command

    serve_command(recipe, cron=cron, interval=interval, name=name, root=root, task_runner=task_runner)


# -- inspection ---------------------------------------------------------------------------------


@app.command()
def tables(
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List the tables and their versions (refs that point at a version are shown)."""
    _check_format(fmt)
    store = _store(root)
    ds = _dataset(store, dataset)
    refs = store.refs(ds)
    pointed: dict[tuple[str, str], list[str]] = {}
    for name, r in refs.items():
        for t, v in r.tables.items():
            pointed.setdefault((t, v), []).append(name)
    records: list[dict[str, Any]] = []
    for table in sorted(store.tables(ds), key=order_key):
        for m in reversed(store.versions(ds, table)):
            records.append(
                {
                    "table": table,
                    "version": m.version,
                    "refs": ",".join(pointed.get((table, m.version), [])),
                    "rows": m.rows,
                    "errors": int(m.totals.get("errors", 0)),
                    "stage": m.stage,
                    "created_at": m.created_at[:19].replace("T", " "),
                    "size": human_bytes(sum(f.bytes for f in m.files)),
                }
            )
        for v in store.incomplete_versions(ds, table):
            records.append(
                {
                    "table": table,
                    "version": v,
                    "refs": "",
                    "rows": 0,
                    "errors": 0,
                    "stage": "(incomplete)",
                    "created_at": "",
                    "size": "",
                }
            )
    render_records(records, fmt, title=f"{ds} @ {store.root}")


@app.command()
def show(
    spec: Annotated[str, typer.Argument(metavar="TABLE[@VERSION]", help="Table and optional version.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show.")] = 20,
    where: Annotated[str | None, typer.Option("--where", "-w", help="SQL condition on the rows.")] = None,
    columns: Annotated[str | None, typer.Option("--columns", "-c", help="Comma-separated columns.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not truncate long values.")] = False,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: FormatOpt = "table",
) -> None:
    """Show rows of a table version (the ref's version by default)."""
    from prefmill.storage.duck import bind, connect, query

    _check_format(fmt)
    store = _store(root)
    ds = _dataset(store, dataset)
    m = _resolve(store, ds, spec, ref)
    con = connect()
    bind(con, store, "t", m)
    cols = ", ".join(f'"{c.strip()}"' for c in columns.split(",")) if columns else "*"
    sql = f"SELECT {cols} FROM t" + (f" WHERE {where}" if where else "") + f" LIMIT {int(limit)}"
    result = query(con, sql)
    title = f"{m.table}@{m.version} · {m.rows:,} rows" + (f" · where {where}" if where else "")
    render_rows(result, fmt, title=title, width=None if full else 60)


@app.command()
def sql(
    statement: Annotated[str, typer.Argument(metavar="QUERY", help="DuckDB SQL; tables are views.")],
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: FormatOpt = "table",
) -> None:
    """Run DuckDB SQL with every table of the ref bound as a view (e.g. SELECT * FROM pairs)."""
    from prefmill.storage.duck import query, session

    _check_format(fmt)
    store = _store(root)
    ds = _dataset(store, dataset)
    con = session(store, ds, ref)
    render_rows(query(con, statement), fmt, width=None if fmt != "table" else 80)


def _lineage_tree(store: Store, m: Manifest) -> dict[str, Any]:
    parents = []
    for p in m.parents:
        parent = store.find_manifest(m.dataset, p.table, p.version)
        parents.append(
            _lineage_tree(store, parent)
            if parent
            else {"table": p.table, "version": p.version, "missing": True}
        )
    return {
        "table": m.table,
        "version": m.version,
        "stage": m.stage,
        "rows": m.rows,
        "created_at": m.created_at,
        "flow_run_id": m.flow_run_id,
        "config": m.config,
        "parents": parents,
    }


@app.command()
def lineage(
    spec: Annotated[str, typer.Argument(metavar="TABLE[@VERSION]")],
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: JsonFormatOpt = "table",
) -> None:
    """Show which versions (and stage configs) a table version was made from."""
    import json

    from rich.tree import Tree

    _check_format(fmt, ("table", "json"))
    store = _store(root)
    ds = _dataset(store, dataset)
    tree = _lineage_tree(store, _resolve(store, ds, spec, ref))
    if fmt == "json":
        print(json.dumps(tree, indent=1, default=str))
        return

    def label(node: dict[str, Any]) -> str:
        if node.get("missing"):
            return f"[red]{node['table']}@{node['version']} (missing)[/red]"
        config = json.dumps(node["config"], default=str)
        config = config if len(config) <= 100 else config[:99] + "…"
        return (
            f"[bold]{node['table']}@{node['version']}[/bold]  {node['rows']:,} rows · "
            f"stage {node['stage']} · {node['created_at'][:19].replace('T', ' ')}\n[dim]{config}[/dim]"
        )

    def grow(branch: Tree, node: dict[str, Any]) -> None:
        for parent in node.get("parents", []):
            grow(branch.add(label(parent)), parent)

    root_tree = Tree(label(tree))
    grow(root_tree, tree)
    console().print(root_tree)


@app.command()
def diff(
    left: Annotated[str, typer.Argument(metavar="TABLE@V1")],
    right: Annotated[str, typer.Argument(metavar="TABLE@V2")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Ids to list per side.")] = 10,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: JsonFormatOpt = "table",
) -> None:
    """Compare two versions: schema changes, rows added / removed / changed (by the table's id)."""
    import json

    from prefmill.storage.duck import bind, connect, query

    _check_format(fmt, ("table", "json"))
    store = _store(root)
    ds = _dataset(store, dataset)
    a, b = _resolve(store, ds, left, ref), _resolve(store, ds, right, ref)
    if a.table != b.table:
        raise PrefmillError(f"diff compares versions of one table, got '{a.table}' and '{b.table}'")
    ta = {c["name"]: c["type"] for c in a.schema}
    tb = {c["name"]: c["type"] for c in b.schema}
    schema = {
        "added": sorted(set(tb) - set(ta)),
        "removed": sorted(set(ta) - set(tb)),
        "retyped": sorted(f"{c}: {ta[c]} -> {tb[c]}" for c in set(ta) & set(tb) if ta[c] != tb[c]),
    }
    key = ID_COLUMNS.get(a.table)
    con = connect()
    bind(con, store, "a", a)
    bind(con, store, "b", b)
    report: dict[str, Any] = {"table": a.table, "from": a.version, "to": b.version, "schema": schema}
    if key is None or key not in ta or key not in tb:
        report["rows"] = {"from": a.rows, "to": b.rows, "note": "no id column: rows compared by count"}
    else:
        shared = sorted(set(ta) & set(tb))
        cols = ", ".join(f'"{c}"' for c in shared)
        added = query(con, f'SELECT "{key}" AS id FROM b EXCEPT SELECT "{key}" FROM a ORDER BY 1')
        removed = query(con, f'SELECT "{key}" AS id FROM a EXCEPT SELECT "{key}" FROM b ORDER BY 1')
        changed = query(
            con,
            f'SELECT a."{key}" AS id FROM (SELECT {cols}, md5(CAST(ROW({cols}) AS VARCHAR)) h FROM a) a '
            f'JOIN (SELECT "{key}", md5(CAST(ROW({cols}) AS VARCHAR)) h FROM b) b USING ("{key}") '
            "WHERE a.h <> b.h ORDER BY 1",
        )
        report["rows"] = {
            "from": a.rows,
            "to": b.rows,
            "added": added.num_rows,
            "removed": removed.num_rows,
            "changed": changed.num_rows,
            "added_ids": added.column("id").to_pylist()[:limit],
            "removed_ids": removed.column("id").to_pylist()[:limit],
            "changed_ids": changed.column("id").to_pylist()[:limit],
        }
    if fmt == "json":
        print(json.dumps(report, indent=1))
        return
    con_out = console()
    con_out.print(f"[bold]{a.table}[/bold]: {a.version} -> {b.version}")
    for what, items in schema.items():
        if items:
            con_out.print(f"  columns {what}: {', '.join(items)}")
    if not any(schema.values()):
        con_out.print("  schema: unchanged")
    rows = report["rows"]
    con_out.print(f"  rows: {rows['from']:,} -> {rows['to']:,}")
    for what in ("added", "removed", "changed"):
        if what in rows:
            ids = rows[f"{what}_ids"]
            more = " …" if rows[what] > len(ids) else ""
            con_out.print(f"  {what}: {rows[what]:,}" + (f"  ({', '.join(ids)}{more})" if ids else ""))


@app.command()
def gc(
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: only list).")] = False,
    incomplete: Annotated[
        bool, typer.Option("--incomplete", help="Also delete versions without a manifest (crashed builds).")
    ] = False,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Garbage-collect versions no ref reaches. Dry run unless --apply."""
    store = _store(root)
    ds = _dataset(store, dataset)
    report = store.gc(ds, apply=apply, incomplete=incomplete)
    out = console()
    verb = "deleted" if apply else "would delete"
    for table, v in report.unreferenced:
        out.print(f"{verb} {table}@{v}")
    for table, v in report.incomplete:
        action = verb if incomplete else "incomplete (kept; --incomplete removes)"
        out.print(f"{action} {table}@{v}")
    out.print(
        f"{len(report.unreferenced)} unreferenced version(s) ({human_bytes(report.bytes)}), "
        f"{len(report.incomplete)} incomplete, {report.kept} kept"
        + ("" if apply else "; run with --apply to delete")
    )


@app.command()
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
            target or DEFAULT_REF, root=root, dataset=dataset, fmt=_check_format(fmt, ("table", "json"))
        )
        return
    if target is not None:
        raise typer.BadParameter(
            f"unexpected argument '{target}' (only `report fidelity` takes a second one)"
        )
    from prefmill.commands.report import write_report

    store = _store(root)
    ds = _dataset(store, dataset)
    path = write_report(store, ds, ref, out, sample_pairs=sample_pairs, bins=bins)
    console().print(f"wrote {path} ({human_bytes(path.stat().st_size)}): open it in a browser")


# -- export -------------------------------------------------------------------------------------

from prefmill.commands.export import export_command  # noqa: E402

app.command(name="export")(export_command)
# -- training (bodies in prefmill.commands.train) ------------------------------------------------


@app.command()
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (its `train:` section, if any).")],
    method: Annotated[
        str | None, typer.Option("--method", help="dpo, kto, reward, grpo, cpo, simpo, orpo.")
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="Input TABLE or TABLE@VERSION.")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Ref naming the input version.")] = None,
    base_model: Annotated[
        str | None, typer.Option("--base-model", help="smollm2, a folder, checkpoints@V.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps.")] = None,
    eval_n: Annotated[
        int | None, typer.Option("--eval-n", help="Held-out problems (0: no evaluation).")
    ] = None,
    root: Annotated[str | None, typer.Option("--root", help="Storage root; overrides the recipe.")] = None,
    fmt: JsonFormatOpt = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and TRL's logs.")] = False,
) -> None:
    """Train a model with TRL on a table of the recipe's dataset; evaluate it before and after."""
    from prefmill.commands.train import train_command

    _check_format(fmt, ("table", "json"))
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


@app.command()
def iterate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (`train:` and `iterate:` sections).")],
    rounds: Annotated[int | None, typer.Option("--rounds", help="Build + train rounds.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="dpo (iterative DPO) or spin.")] = None,
    root: Annotated[str | None, typer.Option("--root", help="Storage root; overrides the recipe.")] = None,
    fmt: JsonFormatOpt = "table",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and TRL's logs.")] = False,
) -> None:
    """The closed loop: build -> train -> build with the new policy, for a number of rounds."""
    from prefmill.commands.train import iterate_command

    _check_format(fmt, ("table", "json"))
    iterate_command(recipe, root=root, rounds=rounds, mode=mode, fmt=fmt, verbose=verbose)


# -- entry point --------------------------------------------------------------------------------


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; prefmill errors print one line, no traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("PREFMILL_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="prefmill", standalone_mode=False)
        return 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console(stderr=True).print("aborted")
        return 130
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted: finished shards are kept; run the same command to resume")
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
    sys.exit(run())


if __name__ == "__main__":
    main()
