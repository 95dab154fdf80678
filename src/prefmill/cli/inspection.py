"""Inspection commands: tables, show, sql, lineage, diff, gc. They read the store directly and never
start Prefect."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from prefmill.cli.options import (
    DatasetOpt,
    FormatOpt,
    JsonFormatOpt,
    RefOpt,
    RootOpt,
    check_format,
    resolve,
)
from prefmill.commands import pick_dataset
from prefmill.errors import PrefmillError
from prefmill.storage import DEFAULT_REF, ID_COLUMNS, Manifest, Store
from prefmill.storage.tables import order_key
from prefmill.ui import console, human_bytes, render_records, render_rows


def tables(
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """List the tables and their versions (refs that point at a version are shown)."""
    check_format(fmt)
    store = Store(root)
    ds = pick_dataset(store, dataset)
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


def show(
    spec: Annotated[str, typer.Argument(metavar="TABLE[@VERSION]", help="Table and optional version.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show.")] = 20,
    where: Annotated[str | None, typer.Option("--where", "-w", help="SQL condition on the rows.")] = None,
    columns: Annotated[str | None, typer.Option("--columns", "-c", help="Comma-separated columns.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not truncate long values.")] = False,
    vertical: Annotated[
        bool, typer.Option("--vertical", "-x", help="One block per row (same as --format records).")
    ] = False,
    pager: Annotated[bool, typer.Option("--pager", help="Page the output ($PAGER, else less).")] = False,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: FormatOpt = "table",
) -> None:
    """Show rows of a table version (the ref's version by default)."""
    from prefmill.storage.duck import bind, connect, lock_down, query, version_paths, where_expression

    check_format(fmt)
    condition = where_expression(where) if where else None
    store = Store(root)
    ds = pick_dataset(store, dataset)
    m = resolve(store, ds, spec, ref)
    con = connect()
    bind(con, store, "t", m)
    lock_down(con, version_paths(store, [m]))
    cols = ", ".join('"' + c.strip().replace('"', '""') + '"' for c in columns.split(",")) if columns else "*"
    sql = f"SELECT {cols} FROM t" + (f" WHERE {condition}" if condition else "") + f" LIMIT {int(limit)}"
    result = query(con, sql)
    title = f"{m.table}@{m.version} · {m.rows:,} rows" + (f" · where {where}" if where else "")
    fmt = "records" if vertical else fmt
    width = None if full else (400 if fmt == "records" else 60)
    if pager:
        from prefmill.ui import paged

        with paged():
            render_rows(result, fmt, title=title, width=width)
    else:
        render_rows(result, fmt, title=title, width=width)


def sql(
    statement: Annotated[str, typer.Argument(metavar="QUERY", help="DuckDB SQL; tables are views.")],
    root: RootOpt = None,
    dataset: DatasetOpt = None,
    ref: RefOpt = DEFAULT_REF,
    fmt: FormatOpt = "table",
) -> None:
    """Run one read-only DuckDB query with every table of the ref bound as a view (e.g. SELECT * FROM
    pairs); it reads those tables' files and nothing else on the machine."""
    from prefmill.storage.duck import check_user_sql, user_query, user_session

    check_format(fmt)
    check_user_sql(statement)
    store = Store(root)
    ds = pick_dataset(store, dataset)
    con = user_session(store, ds, ref)
    render_rows(user_query(con, statement), fmt, width=None if fmt != "table" else 80)


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

    check_format(fmt, ("table", "json"))
    store = Store(root)
    ds = pick_dataset(store, dataset)
    tree = _lineage_tree(store, resolve(store, ds, spec, ref))
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

    check_format(fmt, ("table", "json"))
    store = Store(root)
    ds = pick_dataset(store, dataset)
    a, b = resolve(store, ds, left, ref), resolve(store, ds, right, ref)
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


def gc(
    apply: Annotated[bool, typer.Option("--apply", help="Delete (default: only list).")] = False,
    incomplete: Annotated[
        bool, typer.Option("--incomplete", help="Also delete versions without a manifest (crashed builds).")
    ] = False,
    root: RootOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Garbage-collect versions no ref reaches. Dry run unless --apply."""
    store = Store(root)
    ds = pick_dataset(store, dataset)
    report = store.gc(ds, apply=apply, incomplete=incomplete)
    out = console()
    verb = "deleted" if apply else "would delete"
    for table, v in report.unreferenced:
        out.print(f"{verb} {table}@{v}")
    for table, v in report.incomplete:
        action = verb if incomplete else "incomplete (kept; --incomplete removes)"
        out.print(f"{action} {table}@{v}")
    for table, v in report.live:
        out.print(f"in use by a running build (kept) {table}@{v}")
    out.print(
        f"{len(report.unreferenced)} unreferenced version(s) ({human_bytes(report.bytes)}), "
        f"{len(report.incomplete)} incomplete, {report.kept} kept"
        + (f", {len(report.live)} in use by {report.builds} running build(s)" if report.builds else "")
        + ("" if apply else "; run with --apply to delete")
    )


COMMANDS = (tables, show, sql, lineage, diff, gc)
