"""User SQL (storage/duck.py): one read-only statement, a WHERE that is one condition, and a
connection locked to the bound versions' files (no other file, database, extension or setting)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tables import build

from prefmill.errors import QueryError
from prefmill.storage import Store, duck

DS = "d"


@pytest.fixture()
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "root")
    m = store.write_version(DS, "prompts", build("prompts", 3), stage="t", code_version="1", config={})
    store.write_ref(DS, "latest", {"prompts": m.version})
    (tmp_path / "secret.txt").write_text("s3cr3t")
    monkeypatch.chdir(tmp_path)
    return duck.user_session(store, DS), tmp_path


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO 'out.csv'",
        "SELECT 1; COPY (SELECT 1) TO 'out.csv'",
        "ATTACH 'new.duckdb' AS x",
        "CREATE TABLE t AS SELECT 1",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "",
    ],
)
def test_only_one_reading_statement(sql: str) -> None:
    with pytest.raises(QueryError, match=r"only one read-only statement|Parser Error"):
        duck.check_user_sql(sql)


OUTSIDE = [
    "SELECT * FROM read_text('secret.txt')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_csv('secret.txt')",
    "SELECT prompt_id FROM prompts UNION ALL SELECT content FROM read_text('secret.txt')",
    "SELECT * FROM 'secret.txt'",
]


def test_locked_session_reads_only_its_own_files(locked) -> None:  # type: ignore[no-untyped-def]
    con, folder = locked
    for sql in OUTSIDE:
        with pytest.raises(QueryError) as err:
            duck.user_query(con, sql)
        assert "s3cr3t" not in str(err.value) and "\n" not in str(err.value)
        assert "(outside the dataset)" in str(err.value) or "Catalog Error" in str(err.value), sql
    for setting in ("SET enable_external_access = true", "SET allowed_paths = ['secret.txt']"):
        with pytest.raises(Exception, match="locked"):
            con.execute(setting)
    assert duck.user_query(con, "SELECT count(*) AS n FROM prompts").column("n").to_pylist() == [3]
    assert sorted(p.name for p in folder.iterdir()) == ["root", "secret.txt"]


@pytest.mark.parametrize(
    "where",
    [
        "x > 1; COPY (SELECT 1) TO 'out.csv'",
        "x > 1 UNION ALL SELECT 1",
        "x > 1) UNION ALL (SELECT 1",
        "x > 1 LIMIT 100",
        "x > 1 ORDER BY x",
        "x > 1, x < 3",
        "x > 1 /*",
    ],
)
def test_where_is_one_condition(where: str) -> None:
    with pytest.raises(QueryError, match="must be one SQL condition"):
        duck.where_expression(where)


def test_where_condition_keeps_its_meaning(locked) -> None:  # type: ignore[no-untyped-def]
    con, _ = locked
    cond = duck.where_expression("prompt_id IS NOT NULL -- a trailing comment swallows nothing")
    got = duck.query(con, f"SELECT prompt_id FROM prompts WHERE {cond} LIMIT 2")
    assert got.num_rows == 2
