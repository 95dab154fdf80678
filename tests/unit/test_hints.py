"""Every command prefmill suggests names `--root` when the root is not the default one."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from prefmill.errors import ErrorBudgetError, NotFoundError
from prefmill.flows.artifacts import summary_markdown
from prefmill.flows.budget import check_error_budget, error_budget
from prefmill.flows.results import TableResult
from prefmill.storage import Store
from prefmill.storage.hints import command, is_default_root
from prefmill.storage.schemas import empty_table
from prefmill.ui import render_summary


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PREFMILL_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_command_adds_root_only_when_not_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert command("tables") == "prefmill tables"
    assert command("tables", root=None, dataset="d") == "prefmill tables --dataset d"
    # ./prefmill-data from the current folder is the default, however it is spelled
    for same in ("./prefmill-data", "prefmill-data/", str(tmp_path / "prefmill-data")):
        assert is_default_root(same) and command("tables", root=same) == "prefmill tables"
    other = str(tmp_path / "my data")
    assert command("show", "pairs@abc", "--limit", "5", root=other, dataset="d") == (
        f"prefmill show pairs@abc --limit 5 --dataset d --root '{other}'"
    )
    assert (
        command("show", "c", "--where", "error IS NOT NULL") == "prefmill show c --where 'error IS NOT NULL'"
    )
    assert command("tables", root="s3://bucket/x/") == "prefmill tables --root s3://bucket/x/"
    monkeypatch.setenv("PREFMILL_HOME", other)  # $PREFMILL_HOME is what a plain command opens
    assert command("tables", root=other) == "prefmill tables"
    assert command("tables", root="./prefmill-data") == "prefmill tables --root ./prefmill-data"


def _result(table: str, root: str | None, errors: int = 0) -> TableResult:
    totals = {"rows": 4, "errors": errors}
    return TableResult(table, "v1", 4, False, 0.5, "", totals, {}, "ds", root=root)


def test_summary_artifact_and_errors_name_the_root(tmp_path: Path) -> None:
    root = str(tmp_path / "elsewhere")
    out = io.StringIO()
    summary = SimpleNamespace(
        dataset="ds",
        root=root,
        ref="latest",
        tables=[_result("pairs", root)],
        cost_usd=0.0,
        seconds=1.0,
        tokens=0,
        stopped_after=None,
    )
    render_summary(summary, Console(file=out, width=300, color_system=None))
    text = out.getvalue()
    assert f"`prefmill show pairs --limit 5 --dataset ds --root {root}`" in text
    assert f"`prefmill tables --dataset ds --root {root}`" in text
    assert f"`prefmill report --out report.html --dataset ds --root {root}`" in text
    md = summary_markdown("ds", "instantiation", [_result("pairs", root)])
    assert f"- `prefmill show pairs@v1 --dataset ds --root {root}`" in md
    assert f"`prefmill report --out report.html --dataset ds --root {root}`" in md
    default = summary_markdown("ds", "instantiation", [_result("pairs", str(tmp_path / "prefmill-data"))])
    assert "--root" not in default and "- `prefmill show pairs@v1 --dataset ds`" in default

    with error_budget(0.1), pytest.raises(ErrorBudgetError) as err:
        check_error_budget("synthesis", [_result("candidates", root, errors=4)])
    said = str(err.value)
    assert f"`prefmill show candidates@v1 --where 'error IS NOT NULL' --dataset ds --root {root}`" in said
    assert f"`prefmill build RECIPE --retry-errors --root {root}`" in said

    store = Store(root)
    store.write_version(
        "ds", "pairs", empty_table("pairs"), stage="instantiation", code_version="1", config={}
    )
    with pytest.raises(NotFoundError, match=rf"`prefmill tables --dataset ds --root {root}` lists them"):
        store.resolve_version("ds", "pairs", "nope")
