"""Through the CLI and the build's code, user SQL reads the dataset's own files and nothing else:
`prefmill sql`, `show --where`,
`export --where` (the recipe's export `where` reaches the same export_table) and a recipe's own
instantiation SQL refuse COPY, ATTACH, reading other files, stacked statements and UNION tricks with a
one-line error, and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import _run, store_root  # noqa: F401  (fixture)
from test_exports import _offline, built  # noqa: F401  (fixtures)

from prefmill.errors import ExportError, QueryError
from prefmill.exports import export_table
from prefmill.flows.instantiation import build_output
from prefmill.flows.plans.instantiation import OutputPlan
from prefmill.flows.stage import ShardContext
from prefmill.sql import read_sql
from prefmill.storage import Manifest, Store

SECRET = "s3cr3t-outside-the-root"


@pytest.fixture()
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder beside the root holding a secret file, and the working directory (so the attacks name
    it by short relative paths); nothing else may appear in it."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    monkeypatch.chdir(folder)
    return folder


def _attacks() -> list[str]:
    return [
        "COPY (SELECT 1) TO 'copied.csv'",
        "ATTACH 'new.duckdb' AS x",
        "SELECT * FROM read_text('secret.txt')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT 1; COPY (SELECT 1) TO 'stacked.csv'",
        "SELECT pair_id FROM pairs UNION ALL SELECT content FROM read_text('secret.txt')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
    ]


def _where_attacks() -> list[str]:
    return [
        "1=1; COPY (SELECT 1) TO 'stacked.csv'",
        "1=1 UNION ALL SELECT * FROM read_text('secret.txt')",
        "1=1) UNION ALL (SELECT * FROM read_text('secret.txt')",
        "prompt_id IN (SELECT content FROM read_text('secret.txt'))",
        "prompt_id IN (SELECT content FROM read_text('/etc/hostname'))",
        "1=1 LIMIT 1000",
    ]


def _one_line(err: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_prefmill_sql_refuses_to_leave_the_data(
    store_root: Path,  # noqa: F811
    outside: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for attack in _attacks():
        code, out, err = _run(capsys, "sql", attack, "--root", str(store_root), "-f", "json")
        assert code == 1, (attack, out)
        _one_line(err)
        assert SECRET not in out + err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    code, out, _ = _run(
        capsys, "sql", "SELECT count(*) AS n FROM pairs", "--root", str(store_root), "-f", "json"
    )
    assert code == 0 and '"n": 3' in out  # reading the ref's tables still works


def test_show_where_is_one_condition(
    store_root: Path,  # noqa: F811
    outside: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for attack in _where_attacks():
        code, out, err = _run(
            capsys, "show", "pairs", "--root", str(store_root), "--where", attack, "-f", "json"
        )
        assert code == 1, (attack, out)
        _one_line(err)
        assert SECRET not in out + err
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    code, out, _ = _run(
        capsys, "show", "pairs", "--root", str(store_root), "-w", "margin > 0 -- note", "-f", "csv"
    )
    assert code == 0 and out.count("\n") >= 2


def test_export_where_is_one_condition(
    store_root: Path,  # noqa: F811
    outside: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for i, attack in enumerate(_where_attacks()):
        out_dir = tmp_path / f"exp{i}"
        args = ("export", "pairs", "--out", str(out_dir), "--root", str(store_root), "--where", attack)
        code, out, err = _run(capsys, *args)
        assert code == 1, (attack, out)
        _one_line(err)
        assert SECRET not in out + err and not out_dir.exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_recipe_export_where_and_custom_sql_are_locked(
    built: tuple[Store, dict[str, Manifest]],  # noqa: F811
    outside: Path,
    tmp_path: Path,
) -> None:
    store, m = built
    for attack in _where_attacks():
        with pytest.raises(ExportError) as err:
            export_table(store, m["points"], fmt="rows", out=tmp_path / "x", where=attack)
        assert "\n" not in str(err.value) and SECRET not in str(err.value)
    sources = {k: m[k] for k in ("prompts", "candidates", "judgments")}
    ctx = ShardContext(store, "exp", "instantiation", 0)
    evil = [
        "SELECT * FROM read_text('secret.txt')",
        "SELECT * FROM read_parquet('*.parquet')",
        "COPY (SELECT 1) TO 'c.csv'",
    ]
    for text in evil:
        plan = OutputPlan("points", {"params": {}}, text, "evil.sql")
        with pytest.raises(QueryError) as qerr:
            batches, _ = build_output(ctx, sources, plan)
            list(batches)
        assert "evil.sql" in str(qerr.value) and "\n" not in str(qerr.value)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    mine = OutputPlan("points", {"params": {}}, read_sql("points"), "mine.sql")
    assert (
        sum(t.num_rows for t in build_output(ctx, sources, mine)[0]) > 0
    )  # a recipe's own SQL over the data still runs
