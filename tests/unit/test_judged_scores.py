"""The judged scores (judged_values.sql) and the outputs that read them before the candidates join:
unusable or unknown candidates never reach a pair or a point, and the views are put back after a
snapshot."""

from __future__ import annotations

import duckdb
from test_instantiation_sql import cand, connect, judg, prompt

from prefmill.tasks.instantiation import bind_candidate_scores, instantiate

SCORES = (("good_hi", 0.7), ("good_mid", 0.5), ("good_lo", 0.2), ("failed", 0.9), ("ghost", 0.0))


def unusable_extremes() -> duckdb.DuckDBPyConnection:
    """p1: the highest score is a failed generation, the lowest a candidate id the candidates table
    does not have; c: the same scores on a second criterion."""
    candidates = [
        cand("good_hi", "p1", logprob=-3.0),
        cand("good_mid", "p1", logprob=-6.0),
        cand("good_lo", "p1", logprob=-9.0),
        cand("failed", "p1", error="server 500", response=None),
    ]
    judgments = [
        judg("p1", cid, score, criterion=criterion)
        for criterion in ("overall", "c")
        for cid, score in (
            ("good_hi", 0.7),
            ("good_mid", 0.5),
            ("good_lo", 0.2),
            ("failed", 0.9),
            ("ghost", 0.0),
        )
    ]
    return connect([prompt("p1")], candidates, judgments)


def ids(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    sql = f"SELECT candidate_id, criterion FROM {view} ORDER BY criterion, candidate_id"
    return [tuple(r) for r in con.sql(sql).fetchall()]  # type: ignore[misc]


def test_judged_values_hold_every_judged_candidate_and_score_values_the_usable_ones() -> None:
    con = unusable_extremes()
    bind_candidate_scores(con)
    judged = ids(con, "candidate_judged_values")
    assert ("failed", "overall") in judged and ("ghost", "overall") in judged
    assert ids(con, "candidate_score_values") == [
        (cid, criterion) for criterion in ("c", "overall") for cid in ("good_hi", "good_lo", "good_mid")
    ]
    same = con.sql(
        "SELECT count(*) FROM candidate_score_values AS s JOIN candidate_judged_values AS j "
        "USING (prompt_id, candidate_id, criterion) WHERE s.score = j.score AND s.spread = j.spread"
    ).fetchall()[0][0]
    assert same == 6


def test_best_vs_worst_skips_unusable_and_unknown_extremes() -> None:
    con = unusable_extremes()
    for strategies in (["best_vs_worst"], ["best_vs_worst", "all_pairs"]):  # the view, then the snapshot
        rows = instantiate(con, "pairs", {"strategies": strategies}).to_pylist()
        best = [r for r in rows if r["strategy"] == "best_vs_worst"]
        assert [(r["criterion"], r["chosen_id"], r["rejected_id"]) for r in best] == [
            ("c", "good_hi", "good_lo"),
            ("overall", "good_hi", "good_lo"),
        ]
        assert {(r["chosen"], r["rejected"]) for r in best} == {("response good_hi", "response good_lo")}
        assert best[0]["implicit_margin"] == -3.0 / 3 - -9.0 / 3
        used = {r["chosen_id"] for r in rows} | {r["rejected_id"] for r in rows}
        assert not {"failed", "ghost"} & used


def test_points_skip_unusable_and_unknown_candidates() -> None:
    con = unusable_extremes()
    rows = instantiate(con, "points", {}).to_pylist()
    assert [(r["candidate_id"], r["completion"]) for r in rows[:3]] == [
        ("good_hi", "response good_hi"),
        ("good_lo", "response good_lo"),
        ("good_mid", "response good_mid"),
    ]
    assert len(rows) == 6


def test_snapshots_put_the_views_back() -> None:
    """points and multi-strategy pairs read a snapshot of the scores in place of the views; afterwards
    the views are the views again (the failed and unknown candidates' judged rows are back)."""
    con = unusable_extremes()
    bind_candidate_scores(con)
    before = ids(con, "candidate_judged_values"), ids(con, "candidate_score_values")
    instantiate(con, "points", {})
    instantiate(con, "pairs", {"strategies": ["best_vs_worst", "best_vs_random"]})
    assert (ids(con, "candidate_judged_values"), ids(con, "candidate_score_values")) == before
    assert (
        con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__prefmill%'").fetchall()[0][0]
        <= 2
    )
