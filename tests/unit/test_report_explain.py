"""The report's explaining sections (reports/explain.py): the selection funnel, prompts without a
pair and why, truncation, chosen-minus-rejected length and the warnings, on hand-made tables with
known answers; the page without a browser (tests/integration/test_report_render.py draws it)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from tables import candidates_rows, judgments_rows, pairs_rows, prompts_rows

from prefmill.reports.data import aggregate, collect, funnel_steps
from prefmill.reports.html import render_html
from prefmill.storage import Store
from prefmill.storage.duck import connect
from prefmill.storage.schemas import SCHEMAS


def _t(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS[name])


def _prompt(pid: str) -> dict[str, Any]:
    return {**prompts_rows(1)[0], "prompt_id": pid}


def _cand(cid: str, pid: str, **over: Any) -> dict[str, Any]:
    row = {**candidates_rows(1)[0], "candidate_id": cid, "prompt_id": pid, "response": f"answer {cid}"}
    row.update(n_tokens=10, finish_reason="stop", generator="g", error=None)
    row.update(over)
    return row


def _score(cid: str, pid: str, score: float) -> dict[str, Any]:
    row = judgments_rows(1)[0]
    row.update(
        judgment_id=f"j-{cid}",
        prompt_id=pid,
        candidate_id=cid,
        other_candidate_id=None,
        judge="h",
        mode="point",
        order=None,
        score=score,
        prefers_first=None,
        parse_error=None,
    )
    return row


def _pair(pid: str, chosen: str, rejected: str, criterion: str = "overall") -> dict[str, Any]:
    row = pairs_rows(1)[0]
    row.update(pair_id=f"{chosen}>{rejected}", prompt_id=pid, chosen_id=chosen, rejected_id=rejected)
    row.update(criterion=criterion)
    return row


def _tables() -> dict[str, pa.Table]:
    """p0: no candidate; p1: all failed; p2: one usable; p3: two usable, one scored; p4: tied;
    p5: scores differ but no pair kept; p6 and p7: a pair each."""
    failed = {"error": "RuntimeError: boom", "response": None, "finish_reason": "error", "n_tokens": 0}
    cands = [
        _cand("c1a", "p1", **failed),
        _cand("c1b", "p1", **failed),
        _cand("c2a", "p2"),
        _cand("c2b", "p2", **failed),
        _cand("c3a", "p3"),
        _cand("c3b", "p3"),
        _cand("c4a", "p4"),
        _cand("c4b", "p4"),
        _cand("c5a", "p5"),
        _cand("c5b", "p5"),
        _cand("c6a", "p6", n_tokens=40, finish_reason="length"),
        _cand("c6b", "p6", n_tokens=10, response="   "),
        _cand("c7a", "p7", n_tokens=20, finish_reason="length"),
        _cand("c7b", "p7", n_tokens=30, generator="other"),
    ]
    scores = [("c2a", 1.0), ("c3a", 1.0), ("c4a", 0.5), ("c4b", 0.5), ("c5a", 1.0), ("c5b", 0.0)]
    scores += [("c6a", 1.0), ("c6b", 0.0), ("c7a", 1.0), ("c7b", 0.0)]
    pid = {c["candidate_id"]: c["prompt_id"] for c in cands}
    return {
        "prompts": _t("prompts", [_prompt(f"p{i}") for i in range(8)]),
        "candidates": _t("candidates", cands),
        "judgments": _t("judgments", [_score(c, pid[c], s) for c, s in scores]),
        "pairs": _t("pairs", [_pair("p6", "c6a", "c6b"), _pair("p7", "c7a", "c7b")]),
    }


def _con(tables: dict[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    con = connect()
    for name, table in tables.items():
        con.register(name, table)
    return con


def test_prompts_without_pairs_say_why() -> None:
    rows = aggregate(_con(_tables()), "prompts_without_pairs").to_pylist()
    assert rows == [
        {"reason": "no_candidates", "n_prompts": 1, "examples": ["p0"]},
        {"reason": "all_failed", "n_prompts": 1, "examples": ["p1"]},
        {"reason": "one_usable", "n_prompts": 1, "examples": ["p2"]},
        {"reason": "not_scored", "n_prompts": 1, "examples": ["p3"]},
        {"reason": "tied", "n_prompts": 1, "examples": ["p4"]},
        {"reason": "not_selected", "n_prompts": 1, "examples": ["p5"]},
    ]


def test_truncation_length_delta_and_empty_responses() -> None:
    con = _con(_tables())
    assert aggregate(con, "truncation").to_pylist() == [
        {"generator": "g", "usable": 10, "truncated": 2, "rate": 0.2},
        {"generator": "other", "usable": 1, "truncated": 0, "rate": 0.0},
    ]
    (delta,) = aggregate(con, "length_delta").to_pylist()
    # p6: 40 - 10 = 30, p7: 20 - 30 = -10
    assert delta == {
        "criterion": "overall",
        "pairs": 2,
        "chosen_tokens": 30.0,
        "rejected_tokens": 20.0,
        "mean_delta": 10.0,
        "median_delta": 10.0,
        "chosen_longer": 0.5,
    }
    assert aggregate(con, "empty_responses").to_pylist() == [
        {"generator": "g", "empty": 1, "usable": 10, "examples": ["c6b"]}
    ]
    assert aggregate(con, "funnel").to_pylist() == [{"candidates": 14, "usable": 11, "scored": 10}]


def _store(root: Path, tables: dict[str, pa.Table], pair_stats: dict[str, Any]) -> Store:
    store = Store(root)
    common: dict[str, Any] = {"code_version": "1"}
    stage = {"prompts": "prompts", "candidates": "synthesis", "judgments": "evaluation"}
    versions = {
        name: store.write_version("demo", name, tables[name], stage=stage[name], config={}, **common)
        for name in ("prompts", "candidates", "judgments")
    }
    versions["pairs"] = store.write_version(
        "demo",
        "pairs",
        tables["pairs"],
        stage="instantiation",
        config={"params": {"aggregation": "mean"}},
        stats=pair_stats,
        **common,
    )
    store.write_ref("demo", "latest", {t: m.version for t, m in versions.items()})
    return store


def test_funnel_and_the_page(tmp_path: Path) -> None:
    stats = {"removed": {"swap_inconsistent": 1, "explicit_margin": 3}, "rows_before_selection": 6}
    data = collect(_store(tmp_path / "data", _tables(), stats), "demo")
    assert [(s["step"], s["n"]) for s in funnel_steps(data)] == [
        ("candidates generated", 14),
        ("usable (no generation error)", 11),
        ("scored (a usable judgment)", 10),
        ("pairs before selection", 6),
        ("removed: explicit_margin", 3),
        ("removed: swap_inconsistent", 1),
        ("pairs kept", 2),
    ]
    page = render_html(data)
    assert '<div class="chart" id="chart-funnel"></div>' in page
    assert '<div class="chart" id="chart-length-delta"></div>' in page
    assert re.search(r'data-number="prompts-without-pairs">6 of 8 prompts have no pair', page)
    assert "tied group: every scored candidate got the same score" in page
    assert re.search(r'data-number="truncation">truncation rate: <b>18%</b> \(2 of 11 usable', page)
    warnings = dict(re.findall(r'<li data-warning="([a-z-]+)">(.*?)</li>', page))
    assert set(warnings) == {"empty-responses"}  # 20% truncated is not over the warning level
    assert "<b>1</b> of 10 candidates of <b>g</b> have an empty response" in warnings["empty-responses"]


def test_one_count_of_candidates_is_a_number_and_empty_outputs_warn(tmp_path: Path) -> None:
    tables = _tables()
    keep = [f"p{i}" for i in (4, 5, 6, 7)]  # two usable candidates each
    tables["prompts"] = tables["prompts"].filter(
        pa.compute.is_in(tables["prompts"]["prompt_id"], pa.array(keep))
    )
    tables["pairs"] = tables["pairs"].slice(0, 0)
    stats = {
        "removed": {"explicit_margin": 2},
        "empty_reason": "selection removed all 2 rows: explicit_margin 2",
    }
    page = render_html(collect(_store(tmp_path / "data", tables, stats), "demo"))
    assert "chart-candidates-per-prompt" not in page
    assert 'data-number="candidates-per-prompt">every prompt (4) got <b>2</b> usable candidates<' in page
    warnings = dict(re.findall(r'<li data-warning="([a-z-]+)">(.*?)</li>', page))
    assert (
        warnings["empty-output"] == "<b>pairs</b>: 0 rows -- selection removed all 2 rows: explicit_margin 2"
    )
