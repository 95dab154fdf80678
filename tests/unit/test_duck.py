"""DuckDB over table versions (DESIGN §5): relations, ref sessions, SQL errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from tables import TABLES, build, inferred

from prefmill.errors import NotFoundError, QueryError
from prefmill.storage import DEFAULT_REF, SCHEMAS, Manifest, Store, conform, duck

DS = "ds"


def _write(store: Store, table: str, data: pa.Table | None = None, **config: Any) -> Manifest:
    return store.write_version(
        DS,
        table,
        build(table) if data is None else data,
        stage=f"make_{table}",
        code_version="1",
        config={"table": table, **config},
        shard_rows=4,
    )


def _rows(t: pa.Table, key: str) -> list[dict[str, Any]]:
    return sorted(t.to_pylist(), key=lambda r: r[key])


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield Store(tmp_path / "store")
        return
    import fsspec

    name = f"prefmill-duck-{uuid.uuid4().hex}"
    yield Store(f"memory://{name}")
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


@pytest.fixture
def built(store: Store) -> dict[str, tuple[Manifest, pa.Table]]:
    """One version of each of the six tables, all under the ``latest`` ref."""
    out = {}
    for table in TABLES:
        data = conform(table, inferred(table, 9))
        out[table] = (_write(store, table, data), data)
    store.write_ref(DS, DEFAULT_REF, {t: m.version for t, (m, _) in out.items()})
    return out


@pytest.mark.parametrize("table", TABLES)
def test_relation_round_trip(store: Store, built: dict[str, tuple[Manifest, pa.Table]], table: str) -> None:
    m, data = built[table]
    assert len(m.files) == 3
    key = SCHEMAS[table].names[0]
    got = duck.to_arrow(duck.relation(duck.connect(), store, m))
    assert got.column_names == data.column_names
    assert got.num_rows == data.num_rows
    assert _rows(got, key) == _rows(data, key)


def test_session_binds_every_table_of_the_ref(
    store: Store, built: dict[str, tuple[Manifest, pa.Table]]
) -> None:
    con = duck.session(store, DS)
    for table, (_, data) in built.items():
        key = SCHEMAS[table].names[0]
        got = duck.query(con, f'SELECT * FROM "{table}"')
        assert _rows(got, key) == _rows(data, key)
    joined = duck.query(
        con,
        "SELECT p.prompt_id, count(*) AS n FROM candidates c JOIN prompts p USING (prompt_id) "
        "GROUP BY ALL ORDER BY p.prompt_id",
    )
    cands = built["candidates"][1]
    prompt_ids = set(built["prompts"][1].column("prompt_id").to_pylist())
    expected: dict[str, int] = {}
    for pid in cands.column("prompt_id").to_pylist():
        if pid in prompt_ids:
            expected[pid] = expected.get(pid, 0) + 1
    assert (
        dict(zip(joined.column("prompt_id").to_pylist(), joined.column("n").to_pylist(), strict=True))
        == expected
    )


def test_session_by_named_ref_and_explicit_versions(store: Store) -> None:
    old = _write(store, "points", build("points", 3), v=1)
    new = _write(store, "points", build("points", 8), v=2)
    prompts = _write(store, "prompts")
    store.write_ref(DS, DEFAULT_REF, {"points": new.version, "prompts": prompts.version})
    store.write_ref(DS, "baseline", {"points": old.version})

    def count(con: duckdb.DuckDBPyConnection, table: str = "points") -> int:
        return duck.query(con, f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()

    assert count(duck.session(store, DS)) == 8
    assert count(duck.session(store, DS, ref="baseline")) == 3
    # explicit versions are bound as given, under any name (e.g. a build that has not written its ref)
    con = duck.session(store, DS, versions={"points": old, "points_new": new})
    assert count(con) == 3 and count(con, "points_new") == 8
    with pytest.raises(NotFoundError, match="no ref 'nope'"):
        duck.session(store, DS, ref="nope")


def test_bind_and_relation_over_local_files_use_read_parquet(tmp_path: Path) -> None:
    store = Store(tmp_path / "it's here")  # a quote in the path must survive SQL quoting
    m = _write(store, "candidates")
    src = duck.parquet_source(store, m)
    assert src.startswith("read_parquet([") and src.count(".parquet") == len(m.files)
    con = duck.connect()
    duck.bind(con, store, "cands", m)
    sql = con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'cands'").fetchall()[0]
    assert sql is not None and "read_parquet" in sql[0]
    assert duck.query(con, "SELECT count(*) AS n FROM cands").column("n")[0].as_py() == m.rows
    assert duck.to_arrow(duck.relation(con, store, m)).num_rows == m.rows


def test_relation_over_non_local_store_scans_arrow_dataset() -> None:
    import fsspec

    name = f"prefmill-duck-{uuid.uuid4().hex}"
    store = Store(f"memory://{name}")
    try:
        m = _write(store, "judgments", build("judgments", 10, parse_errors=3))
        assert not store.loc.is_local
        con = duck.connect()
        rel = duck.relation(con, store, m)
        got = duck.to_arrow(rel.filter("parse_error IS NULL").aggregate("count(*) AS n"))
        assert got.column("n")[0].as_py() == 7
        duck.bind(con, store, "j", m)
        assert (
            duck.query(con, "SELECT count(*) AS n FROM j WHERE parse_error IS NOT NULL")
            .column("n")[0]
            .as_py()
            == m.totals["errors"]
        )
    finally:
        fsspec.filesystem("memory").rm(f"/{name}", recursive=True)


def test_query_with_named_parameters(store: Store, built: dict[str, tuple[Manifest, pa.Table]]) -> None:
    con = duck.session(store, DS)
    got = duck.query(con, "SELECT pair_id FROM pairs WHERE margin >= $min_margin", {"min_margin": 4.5})
    data = built["pairs"][1]
    expected = [r["pair_id"] for r in data.to_pylist() if r["margin"] >= 4.5]
    assert sorted(got.column("pair_id").to_pylist()) == sorted(expected)
    assert 0 < len(expected) < data.num_rows


def test_query_runs_statements(tmp_path: Path) -> None:
    con = duck.connect()
    duck.query(con, "CREATE TABLE t AS SELECT range AS x FROM range(5)")
    assert duck.query(con, "SELECT sum(x) AS s FROM t").column("s")[0].as_py() == 10


def _duckdb_first_line(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    try:
        duck.to_arrow(con.sql(sql))
    except duckdb.Error as exc:
        return str(exc).strip().splitlines()[0]
    raise AssertionError(f"expected {sql!r} to fail")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT nope FROM candidates",  # binder error
        "SELEC 1",  # parser error
        "SELECT * FROM no_such_table",  # catalog error
        "SELECT CAST(response AS INTEGER) FROM candidates",  # fails only while running
    ],
)
def test_sql_errors_become_query_error_with_first_line(tmp_path: Path, sql: str) -> None:
    store = Store(tmp_path / "store")
    m = _write(store, "candidates")
    con = duck.session(store, DS, versions={"candidates": m})
    con.execute("SET threads = 1")  # a run-time error names the first bad row: make that row fixed
    first = _duckdb_first_line(con, sql)
    with pytest.raises(QueryError) as err:
        duck.query(con, sql)
    assert str(err.value) == f"SQL error: {first}"
    assert "\n" not in str(err.value)
    assert isinstance(err.value.__cause__, duckdb.Error)


def test_session_binds_exactly_the_ref_tables(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    p = _write(store, "prompts")
    c = _write(store, "candidates")
    _write(store, "pairs")  # published but not in the ref
    store.write_ref(DS, DEFAULT_REF, {"prompts": p.version, "candidates": c.version})
    con = duck.session(store, DS)
    views = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()
    assert views == [("candidates",), ("prompts",)]
    with pytest.raises(QueryError, match="pairs"):
        duck.query(con, "SELECT * FROM pairs")
