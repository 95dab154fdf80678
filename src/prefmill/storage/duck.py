"""DuckDB over table versions: a version as a relation, a ref's tables as views.

Local versions are read with ``read_parquet`` on the manifest's file list (the files DuckDB would read
bare, nothing more); versions on other filesystems are scanned through pyarrow datasets.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

from prefmill.errors import QueryError
from prefmill.storage.manifest import Manifest
from prefmill.storage.store import DEFAULT_REF, Store


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection."""
    return duckdb.connect(database=":memory:")


def parquet_source(store: Store, m: Manifest) -> str:
    """SQL text that scans a local version: ``read_parquet([...])``."""
    files = ", ".join(_quote_str(p) for p in store.file_paths(m))
    return f"read_parquet([{files}])"


def bind(con: duckdb.DuckDBPyConnection, store: Store, name: str, m: Manifest) -> None:
    """Make version ``m`` queryable as view ``name`` on ``con``."""
    if store.loc.is_local:
        con.execute(
            f"CREATE OR REPLACE VIEW {_quote_ident(name)} AS SELECT * FROM {parquet_source(store, m)}"
        )
    else:
        con.register(name, store.arrow_dataset(m))


def relation(con: duckdb.DuckDBPyConnection, store: Store, m: Manifest) -> duckdb.DuckDBPyRelation:
    """Version ``m`` as a DuckDB relation."""
    if store.loc.is_local:
        return con.sql(f"SELECT * FROM {parquet_source(store, m)}")
    return con.from_arrow(store.arrow_dataset(m))


def session(
    store: Store,
    dataset: str,
    ref: str = DEFAULT_REF,
    versions: Mapping[str, Manifest] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection with every table of ``ref`` bound as a view under its table name; with ``versions``,
    exactly those are bound (under their keys) and the ref is not read."""
    con = connect()
    bound: dict[str, Manifest] = {}
    if versions is None or not versions:
        r = store.read_ref(dataset, ref)
        bound.update({t: store.manifest(dataset, t, v) for t, v in r.tables.items()})
    bound.update(versions or {})
    for name, m in bound.items():
        bind(con, store, name, m)
    return con


def to_arrow(result: duckdb.DuckDBPyConnection | duckdb.DuckDBPyRelation) -> pa.Table:
    """The result as an Arrow table (``to_arrow_table`` on DuckDB >= 1.4, ``fetch_arrow_table`` before)."""
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch()


_LOCKED = " - file system operations are disabled by configuration"


def error_line(exc: duckdb.Error) -> str:
    """DuckDB's message, first line; a refusal of the locked connection (``lock_down``) says why."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.replace(_LOCKED, " (outside the dataset)")


def _query_error(exc: duckdb.Error) -> QueryError:
    return QueryError(f"SQL error: {error_line(exc)}")


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | None = None) -> pa.Table:
    """Run SQL; DuckDB errors become ``QueryError`` with DuckDB's own one-line message."""
    try:
        rel = con.sql(sql, params=dict(params) if params else None)
    except duckdb.Error as exc:
        raise _query_error(exc) from exc
    if rel is None:  # a statement that returns no rows (DDL)
        return pa.table({})
    try:
        return to_arrow(rel)
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


#: Share of the machine's memory a working connection may use when no limit is set.
DEFAULT_MEMORY_SHARE = 0.25
#: Folder under a dataset where working connections spill (not a table: the name is not a table name).
SCRATCH_DIR = "_scratch"


def default_memory_limit(share: float = DEFAULT_MEMORY_SHARE) -> str:
    """``share`` of the machine's physical memory as a DuckDB size (``'5.8GiB'``), at least 1 GiB."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return f"{max(1.0, total * share / 2**30):.1f}GiB"


def scratch_dir(store: Store, dataset: str) -> str | None:
    """``<root>/<dataset>/_scratch`` for a local store (None elsewhere: DuckDB then spills to its own
    default temp directory)."""
    return store.path(dataset, SCRATCH_DIR) if store.loc.is_local else None


def configure(
    con: duckdb.DuckDBPyConnection,
    *,
    memory_limit: str | None = None,
    temp_directory: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Bound a working connection's memory: ``memory_limit`` (a DuckDB size such as ``'4GB'``;
    default ``default_memory_limit()``) and the folder it spills to past that (``temp_directory``;
    DuckDB's default when None). Large sorts, joins and temporary tables then go to disk instead of
    growing the process. Returns ``con``."""
    limit = memory_limit or default_memory_limit()
    try:
        con.execute(f"SET memory_limit = {_quote_str(limit)}")
        if temp_directory is not None:
            con.execute(f"SET temp_directory = {_quote_str(temp_directory)}")
    except duckdb.Error as exc:
        raise _query_error(exc) from exc
    return con


# --- user SQL: one read-only statement over the bound files, nothing else ------------------------------

#: Statement kinds a user's SQL may be (``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``FROM``... parse as SELECT).
READ_STATEMENTS = ("SELECT", "EXPLAIN")


def check_user_sql(sql: str, *, where: str = "SQL") -> str:
    """``sql`` when it is exactly one reading statement (SELECT or EXPLAIN); else ``QueryError`` naming
    what was found. Stacked statements, COPY, ATTACH, SET, INSTALL, CREATE... are refused here."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _query_error(exc) from exc
    kinds = [s.type.name for s in statements]
    if len(kinds) != 1 or kinds[0] not in READ_STATEMENTS:
        raise QueryError(
            f"{where}: only one read-only statement (SELECT) may run, found: {', '.join(kinds) or 'none'}; "
            "the tables are read-only views"
        )
    return sql


def where_expression(where: str, *, what: str = "--where") -> str:
    """A WHERE condition, checked to be one SQL expression (no ``;``, UNION, LIMIT, ORDER BY, comment
    that swallows the rest) and returned in parentheses, ready to follow ``WHERE``."""
    try:
        duckdb.SQLExpression(where)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = first.split("is not an expression list: ", 1)[-1]  # DuckDB quotes the whole text first
        raise QueryError(
            f"{what} must be one SQL condition on the rows (no ';', UNION, LIMIT, ORDER BY): {reason}"
        ) from exc
    return f"(\n{where}\n)"


def lock_down(
    con: duckdb.DuckDBPyConnection,
    paths: list[str] | tuple[str, ...] = (),
    directories: list[str] | tuple[str, ...] = (),
) -> None:
    """Limit ``con`` to the files in ``paths`` (the bound versions' Parquet files): no other file, URL,
    database or extension can be read or written, and no setting changed afterwards. Call it once the
    views are bound."""
    con.execute(f"SET allowed_paths = [{', '.join(_quote_str(p) for p in paths)}]")
    if directories:  # e.g. the spill folder (``configure``'s temp_directory)
        con.execute(f"SET allowed_directories = [{', '.join(_quote_str(d) for d in directories)}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def version_paths(store: Store, manifests: list[Manifest] | tuple[Manifest, ...]) -> list[str]:
    """The local files of ``manifests`` DuckDB reads (none for a store on another filesystem)."""
    if not store.loc.is_local:
        return []
    return [p for m in manifests for p in store.file_paths(m)]


def user_session(
    store: Store,
    dataset: str,
    ref: str = DEFAULT_REF,
    versions: Mapping[str, Manifest] | None = None,
) -> duckdb.DuckDBPyConnection:
    """``session`` locked down (``lock_down``) to the files of the versions it binds."""
    if not versions:
        r = store.read_ref(dataset, ref)
        versions = {t: store.manifest(dataset, t, v) for t, v in r.tables.items()}
    con = connect()
    for name, m in versions.items():
        bind(con, store, name, m)
    lock_down(con, version_paths(store, list(versions.values())))
    return con


def user_query(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """``query`` for a user's SQL: exactly one read-only statement (``check_user_sql``)."""
    return query(con, check_user_sql(sql))
