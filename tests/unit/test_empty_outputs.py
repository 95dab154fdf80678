"""An output with no rows says why: the reasons in pipeline order (selection removed everything, no
usable judgment, one candidate per prompt, equal scores, filters), from counts over the scores; the
build summary prints them (the report's stage table too: tests/integration/test_fidelity_gate_build.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import duckdb
from rich.console import Console

from prefmill.tasks.instantiation.empty import diagnose, empty_reason
from prefmill.ui import render_summary


def _con(scores: list[tuple[str, str, float]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE prompts AS SELECT * FROM (VALUES ('p'), ('q')) t(prompt_id)")
    rows = "('a', NULL), ('b', NULL), ('c', 'boom')"
    con.execute(f"CREATE TABLE candidates AS SELECT * FROM (VALUES {rows}) t(candidate_id, error)")
    columns = "prompt_id VARCHAR, candidate_id VARCHAR, criterion VARCHAR, score DOUBLE"
    con.execute(f"CREATE TABLE candidate_scores ({columns})")
    for p, c, s in scores:
        con.execute("INSERT INTO candidate_scores VALUES (?, ?, 'overall', ?)", [p, c, s])
    return con


def test_reasons_in_pipeline_order() -> None:
    params = {"min_margin": 0.1}
    nothing = diagnose(_con([]))
    assert nothing == {
        "prompts": 2,
        "candidates": 2,
        "scored": 0,
        "prompts_two_scored": 0,
        "prompts_distinct_scores": 0,
    }
    assert "no candidate has a usable judgment" in empty_reason("pairs", {}, nothing, params)
    hint = "prefmill report fidelity --dataset d --root /data/x"
    assert empty_reason("pairs", {}, nothing, params, hint).endswith(f"`{hint}`")
    one = diagnose(_con([("p", "a", 1.0), ("q", "b", 0.0)]))
    assert "no prompt has two scored candidates" in empty_reason("pairs", {}, one, params)
    ties = diagnose(_con([("p", "a", 0.5), ("p", "b", 0.5)]))
    assert ties["prompts_two_scored"] == 1 and ties["prompts_distinct_scores"] == 0
    assert "every prompt's candidates score the same" in empty_reason("pairs", {}, ties, params)
    apart = diagnose(_con([("p", "a", 0.5), ("p", "b", 0.55)]))
    assert "instantiation.min_margin 0.1" in empty_reason("pairs", {}, apart, params)
    assert "labelling rule" in empty_reason("points", {}, apart, params)
    removed = empty_reason("pairs", {"swap_inconsistent": 100, "spread_below_min": 2}, apart, params)
    assert removed.startswith("selection removed all 102 rows: swap_inconsistent 100, spread_below_min 2")
    assert "drop_swap_inconsistent" in removed


def test_diagnose_leaves_the_connection_usable() -> None:
    # build_output diagnoses an empty output, then streams its (empty) rows from the same connection
    con = _con([("p", "a", 0.5), ("p", "b", 0.5)])
    diagnose(con)
    assert con.sql("SELECT count(*) FROM candidate_scores").fetchall() == [(2,)]


def test_the_summary_says_why_an_output_is_empty() -> None:
    reason = "every prompt's candidates score the same, so no pair has a margin"
    tables = [
        SimpleNamespace(table=t, version="v1", rows=n, cached=False, seconds=0.1, totals={}, stats=st)
        for t, n, st in (("judgments", 24, {}), ("pairs", 0, {"empty_reason": reason}))
    ]
    summary = SimpleNamespace(
        dataset="d",
        tables=tables,
        cost_usd=0.0,
        seconds=1.0,
        tokens=0,
        ref="latest",
        stopped_after=None,
        root="/r",
    )
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=200, color_system=None))
    assert f"pairs: 0 rows -- {reason}" in out.getvalue()
