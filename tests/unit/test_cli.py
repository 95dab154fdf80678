"""The inspection CLI over a store built from small hand-made tables (no model, no Prefect)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from tables import build

from prefmill.cli import run
from prefmill.storage import Parent, Store


@pytest.fixture()
def store_root(tmp_path: Path) -> Path:
    """Dataset `demo`: prompts -> candidates -> judgments -> pairs (two versions), ref `latest`."""
    root = tmp_path / "data"
    store = Store(root)
    common = {"code_version": "1"}
    p = store.write_version("demo", "prompts", build("prompts", 4), stage="prompts", config={}, **common)
    c = store.write_version(
        "demo",
        "candidates",
        build("candidates", 6, errors=1),
        stage="synthesis",
        config={"k": 2},
        parents=[Parent("prompts", p.version)],
        **common,
    )
    j = store.write_version(
        "demo",
        "judgments",
        build("judgments", 6),
        stage="evaluation",
        config={},
        parents=[Parent("candidates", c.version)],
        **common,
    )
    pairs = build("pairs", 5)
    parents = [Parent("judgments", j.version), Parent("candidates", c.version)]
    old = store.write_version(
        "demo",
        "pairs",
        pairs.slice(0, 3),
        stage="instantiation",
        config={"min_margin": 0.5},
        parents=parents,
        **common,
    )
    changed = pairs.slice(1, 3)
    margins = changed.column("margin").to_pylist()
    margins[0] = 99.0  # pair 1 keeps its id but changes
    changed = changed.set_column(changed.schema.get_field_index("margin"), "margin", pa.array(margins))
    new = store.write_version(
        "demo", "pairs", changed, stage="instantiation", config={"min_margin": 0.0}, parents=parents, **common
    )
    store.write_ref(
        "demo",
        "latest",
        {"prompts": p.version, "candidates": c.version, "judgments": j.version, "pairs": new.version},
    )
    (tmp_path / "versions.json").write_text(
        json.dumps({"old": old.version, "new": new.version, "c": c.version})
    )
    return root


def _versions(root: Path) -> dict[str, str]:
    return json.loads((root.parent / "versions.json").read_text())


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_tables_lists_versions_and_refs(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "tables", "--root", str(store_root), "--format", "json")
    assert code == 0
    records = json.loads(out)
    v = _versions(store_root)
    by_version = {r["version"]: r for r in records}
    assert [r["table"] for r in records] == ["prompts", "candidates", "judgments", "pairs", "pairs"]
    assert by_version[v["new"]]["refs"] == "latest" and by_version[v["new"]]["rows"] == 3
    assert by_version[v["old"]]["refs"] == ""
    assert by_version[v["c"]]["errors"] == 1


def test_tables_as_rich_table(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "tables", "--root", str(store_root))
    assert code == 0
    assert "candidates" in out and _versions(store_root)["new"] in out and "latest" in out


def test_show_limit_where_columns(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "show",
        "candidates",
        "--root",
        str(store_root),
        "--limit",
        "2",
        "--format",
        "json",
        "--columns",
        "candidate_id,error",
    )
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 2 and set(rows[0]) == {"candidate_id", "error"}
    code, out, _ = _run(
        capsys, "show", "candidates", "--root", str(store_root), "--where", "error IS NOT NULL", "-f", "json"
    )
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and rows[0]["response"] is None


def test_show_old_version_by_prefix_and_csv(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _versions(store_root)["old"]
    code, out, _ = _run(capsys, "show", f"pairs@{old[:6]}", "--root", str(store_root), "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("pair_id,prompt_id,prompt,chosen") and len(lines) == 4


def test_show_nested_columns_render(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "prompts", "--root", str(store_root), "-c", "messages", "-f", "csv")
    assert code == 0
    assert '""role"": ""user""' in out  # the chat is JSON inside the CSV cell


def test_show_vertical_and_paged(
    store_root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(capsys, "show", "pairs", "--root", str(store_root), "-n", "2", "--vertical")
    assert code == 0
    assert out.count("── row ") == 2 and "── row 2 ──" in out
    lines = out.splitlines()
    assert any(line.strip().startswith("pair_id ") for line in lines)  # one "column value" line each
    assert any(line.strip().startswith("chosen ") for line in lines)
    paged: list[str] = []
    monkeypatch.setattr("pydoc.pager", paged.append)
    code, out, _ = _run(capsys, "show", "pairs", "--root", str(store_root), "-n", "1", "-x", "--pager")
    assert code == 0 and out == "" and len(paged) == 1 and "── row 1 ──" in paged[0]


def test_unknown_table_and_version_errors(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "show", "pears", "--root", str(store_root))
    assert code == 1
    assert "no table 'pears' in dataset 'demo' (tables: candidates, judgments, pairs, prompts)" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "show", "pairs@ffffffff", "--root", str(store_root))
    assert code == 1 and "no published version 'ffffffff' of table 'pairs'" in err


def test_sql_over_the_ref_and_sql_errors(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "sql",
        "SELECT count(*) AS n FROM pairs JOIN candidates ON true",
        "--root",
        str(store_root),
        "-f",
        "json",
    )
    assert code == 0 and json.loads(out) == [{"n": 3 * 6}]
    code, _, err = _run(capsys, "sql", "SELEC 1", "--root", str(store_root))
    assert code == 1
    assert err.strip().startswith('error: SQL error: Parser Error: syntax error at or near "SELEC"')
    assert "Traceback" not in err
    code, _, err = _run(capsys, "sql", "SELECT * FROM nope", "--root", str(store_root))
    assert code == 1 and "nope" in err and "Catalog Error" in err


def test_lineage_walks_parents(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "lineage", "pairs", "--root", str(store_root), "-f", "json")
    assert code == 0
    tree = json.loads(out)
    assert tree["table"] == "pairs" and tree["config"] == {"min_margin": 0.0}
    parents = {p["table"]: p for p in tree["parents"]}
    assert set(parents) == {"judgments", "candidates"}
    assert parents["judgments"]["parents"][0]["table"] == "candidates"
    assert parents["candidates"]["parents"][0]["table"] == "prompts"
    code, out, _ = _run(capsys, "lineage", "pairs", "--root", str(store_root))
    assert code == 0 and "prompts@" in out and "stage synthesis" in out


def test_diff_reports_added_removed_changed(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v = _versions(store_root)
    pairs = build("pairs", 5).column("pair_id").to_pylist()
    code, out, _ = _run(
        capsys, "diff", f"pairs@{v['old']}", f"pairs@{v['new']}", "--root", str(store_root), "-f", "json"
    )
    assert code == 0
    rows = json.loads(out)["rows"]
    assert rows["added"] == 1 and rows["added_ids"] == [pairs[3]]
    assert rows["removed"] == 1 and rows["removed_ids"] == [pairs[0]]
    assert rows["changed"] == 1 and rows["changed_ids"] == [pairs[1]]
    assert json.loads(out)["schema"] == {"added": [], "removed": [], "retyped": []}
    code, _, err = _run(capsys, "diff", "pairs", f"candidates@{v['c']}", "--root", str(store_root))
    assert code == 1 and "one table" in err


def test_gc_dry_run_then_apply(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _versions(store_root)["old"]
    code, out, _ = _run(capsys, "gc", "--root", str(store_root))
    assert code == 0 and f"would delete pairs@{old}" in out
    assert (store_root / "demo" / "pairs" / old / "_manifest.json").exists()
    code, out, _ = _run(capsys, "gc", "--root", str(store_root), "--apply")
    assert code == 0 and f"deleted pairs@{old}" in out
    assert not (store_root / "demo" / "pairs" / old).exists()
    assert len(Store(store_root).versions("demo", "pairs")) == 1


def test_dataset_selection_errors(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "tables", "--root", str(store_root), "--dataset", "../etc")
    assert code == 1 and "no dataset '../etc'" in err
    Store(store_root).write_version(
        "other", "prompts", build("prompts", 1), stage="p", code_version="1", config={}
    )
    code, _, err = _run(capsys, "tables", "--root", str(store_root))
    assert code == 1 and "several datasets" in err and "--dataset" in err
    code, _, err = _run(capsys, "tables", "--root", str(store_root.parent / "empty"))
    assert code == 1 and "no datasets under" in err


def test_bad_format_is_a_usage_error(store_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "tables", "--root", str(store_root), "--format", "xml")
    assert code == 2 and "'xml' is not one of table, records, json, csv" in err


def test_init_writes_quickstart_and_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "init", "quickstart", "--dir", str(tmp_path))
    assert code == 0 and f"next: prefmill build {tmp_path / 'quickstart.yaml'}" in out
    assert (tmp_path / "quickstart.yaml").exists() and (tmp_path / "quickstart-prompts.jsonl").exists()
    from prefmill.recipe import load_recipe

    recipe = load_recipe(tmp_path / "quickstart.yaml")
    assert recipe.dataset == "quickstart"
    code, _, err = _run(capsys, "init", "quickstart", "--dir", str(tmp_path))
    assert code == 1 and "exists; pass --force" in err
    code, _, err = _run(capsys, "init", "nosuch", "--dir", str(tmp_path))
    assert code == 1 and "unknown template 'nosuch'" in err


def test_build_with_missing_or_broken_recipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "build", str(tmp_path / "missing.yaml"))
    assert code == 1 and "recipe file not found" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: x\nprompts:\n  sources:\n    - kind: arithmetic\n      n: ten\n")
    code, _, err = _run(capsys, "build", str(bad))
    assert code == 1 and f"{bad} line 5: prompts.sources[0].n:" in err


def test_inspection_does_not_import_prefect(store_root: Path) -> None:
    """`prefmill tables` must answer fast: it may not import Prefect, torch or transformers."""
    code = (
        "import sys; from prefmill.cli import run; "
        f"rc = run(['tables', '--root', {str(store_root)!r}]); "
        "heavy = [m for m in ('prefect', 'torch', 'transformers') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_every_command_group_is_registered() -> None:
    from prefmill.cli.app import GROUPS, app

    registered = [c.callback for c in app.registered_commands]
    assert registered == [command for group in GROUPS for command in group.COMMANDS]
    assert [c.__name__ for c in registered] == [
        "init", "build", "serve", "tables", "show", "sql", "lineage", "diff", "gc", "report", "export",
        "train", "iterate", "annotate", "import_pairs", "check",
    ]  # fmt: skip


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from prefmill import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"prefmill {__version__}"
