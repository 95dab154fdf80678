"""Pair strategies, WPO weights, multi-objective pairs, KTO quantile labels and the selection filters
(prefmill/sql/pairs.sql, points.sql, selection.sql) on hand-made tables with known answers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from test_instantiation_sql import cand, connect, judg, prompt, scored

from prefmill.errors import QueryError
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import instantiate, instantiate_with_report
from prefmill.tasks.instantiation.embeddings import embed_candidates, embeddings_table

Row = dict[str, Any]


def pairs_of(con: Any, **params: object) -> list[tuple[str, str, str]]:
    rows = instantiate(con, "pairs", params).to_pylist()
    return [(r["chosen_id"], r["rejected_id"], r["strategy"]) for r in rows]


def pair_judg(a: str, b: str, order: str, prefers_first: float | None, judge: str = "pj", **kw: Any) -> Row:
    row = judg("p1", a, None, judge=judge, mode="pair", other=b, **kw)
    row["judgment_id"] += order
    row.update(order=order, prefers_first=prefers_first)
    return row


# --- strategies -------------------------------------------------------------------------------------


def test_all_pairs_skips_ties() -> None:
    cands, js = scored("p1", {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0})
    con = connect([prompt("p1")], cands, js)
    got = pairs_of(con, strategies=["all_pairs"])
    assert got == [
        ("a", "b", "all_pairs"),
        ("a", "c", "all_pairs"),
        ("a", "d", "all_pairs"),
        ("b", "d", "all_pairs"),
        ("c", "d", "all_pairs"),
    ]  # b vs c is a tie: never a pair
    rows = instantiate(con, "pairs", {"strategies": ["all_pairs"], "min_margin": 0.75}).to_pylist()
    assert [(r["chosen_id"], r["rejected_id"]) for r in rows] == [("a", "d")]


def test_best_vs_random_is_seeded_and_never_a_tie() -> None:
    scores = {f"c{i}": float(i % 5) for i in range(12)}  # c4 and c9 share the best score 4.0
    cands, js = scored("p1", scores)
    con = connect([prompt("p1")], cands, js)
    picks = {}
    for seed in range(4):
        report = instantiate_with_report(con, "pairs", {"strategies": ["best_vs_random"], "seed": seed})
        ((chosen, rejected, strategy),) = [
            (r["chosen_id"], r["rejected_id"], r["strategy"]) for r in report.table.to_pylist()
        ]
        assert (chosen, strategy) == ("c4", "best_vs_random")  # best, ties broken by candidate_id
        assert scores[rejected] < 4.0  # never the other best (c9)
        picks[seed] = rejected
    assert pairs_of(con, strategies=["best_vs_random"], seed=3)[0][1] == picks[3]  # same seed, same pick
    assert len(set(picks.values())) > 1  # the seed matters
    # all scores equal: nothing lower to pick
    cands, js = scored("p1", {"a": 0.5, "b": 0.5})
    assert pairs_of(connect([prompt("p1")], cands, js), strategies=["best_vs_random"]) == []


def test_several_strategies_in_one_table() -> None:
    cands, js = scored("p1", {"a": 1.0, "b": 0.5, "c": 0.0})
    con = connect([prompt("p1")], cands, js)
    got = pairs_of(con, strategies=["best_vs_worst", "all_pairs"])
    assert got == [
        ("a", "b", "all_pairs"),
        ("a", "c", "all_pairs"),
        ("b", "c", "all_pairs"),
        ("a", "c", "best_vs_worst"),
    ]
    table = instantiate(con, "pairs", {"strategies": ["best_vs_worst", "all_pairs"]})
    ids = table.column("pair_id").to_pylist()
    assert len(set(ids)) == 4  # the strategy is part of the id


def test_unknown_strategy_is_named() -> None:
    con = connect([prompt("p1")], *scored("p1", {"a": 1.0, "b": 0.0}))
    with pytest.raises(QueryError, match=r"unknown pair strategy 'best'.*best_vs_worst, all_pairs"):
        instantiate(con, "pairs", {"strategies": ["best"]})
    with pytest.raises(QueryError, match=r"\$strategies must be a non-empty list"):
        instantiate(con, "pairs", {"strategies": "all_pairs"})


# --- multi-objective --------------------------------------------------------------------------------


def two_criteria() -> Any:
    # helpfulness / safety; a dominates b and d; c trades off against a; e lacks a safety score
    h = {"a": 0.9, "b": 0.5, "c": 1.0, "d": 0.9, "e": 1.0}
    s = {"a": 0.8, "b": 0.8, "c": 0.2, "d": 0.7}
    cands = [cand(c, "p1") for c in h]
    js = [judg("p1", c, v, criterion="helpfulness") for c, v in h.items()]
    js += [judg("p1", c, v, criterion="safety") for c, v in s.items()]
    return connect([prompt("p1")], cands, js)


def test_pairs_per_criterion() -> None:
    rows = instantiate(two_criteria(), "pairs", {}).to_pylist()
    got = [(r["criterion"], r["chosen_id"], r["rejected_id"]) for r in rows]
    assert got == [("helpfulness", "c", "b"), ("safety", "a", "c")]


def test_pareto_pairs() -> None:
    rows = instantiate(two_criteria(), "pairs", {"strategies": ["pareto"]}).to_pylist()
    got = {(r["chosen_id"], r["rejected_id"]) for r in rows}
    # a >= b on both (better on helpfulness), a >= d (better on safety), d >= b? 0.9>0.5 but 0.7<0.8: no
    assert got == {("a", "b"), ("a", "d")}
    by_pair = {(r["chosen_id"], r["rejected_id"]): r for r in rows}
    ab = by_pair[("a", "b")]
    assert ab["criterion"] == ab["strategy"] == "pareto"
    assert ab["chosen_score"] == pytest.approx(0.85) and ab["rejected_score"] == pytest.approx(0.65)
    assert ab["margin"] == pytest.approx(0.2)


def test_weighted_scalarisation() -> None:
    weights = {"helpfulness": 0.75, "safety": 0.25}
    con = two_criteria()
    points = instantiate(con, "points", {"criterion_weights": weights}).to_pylist()
    weighted = {r["candidate_id"]: r["reward"] for r in points if r["criterion"] == "weighted"}
    # e has no safety score: no weighted score
    assert weighted == pytest.approx({"a": 0.875, "b": 0.575, "c": 0.8, "d": 0.85})
    pairs = instantiate(con, "pairs", {"criterion_weights": weights}).to_pylist()
    (w,) = [p for p in pairs if p["criterion"] == "weighted"]
    assert (w["chosen_id"], w["rejected_id"], w["margin"]) == ("a", "b", pytest.approx(0.3))
    # without weights there is no weighted criterion
    assert {p["criterion"] for p in instantiate(con, "points", {}).to_pylist()} == {"helpfulness", "safety"}


# --- WPO weights and implicit margins ------------------------------------------------------------------


def lp_prompt(logprobs: dict[str, float | None], scores: dict[str, float], policy: bool = False) -> Any:
    cands = [cand(c, "p1", logprob=None if policy else lp) for c, lp in logprobs.items()]
    table = pa.Table.from_pylist(cands, schema=SCHEMAS["candidates"])
    if policy:  # offline candidates scored by the target policy in a column of their own
        column = pa.array(list(logprobs.values()), pa.float64())
        if "policy_logprob" in table.column_names:  # an optional column of the candidates schema
            table = table.set_column(table.column_names.index("policy_logprob"), "policy_logprob", column)
        else:
            table = table.append_column("policy_logprob", column)
    js = [judg("p1", c, s) for c, s in scores.items()]
    con = connect([prompt("p1")], [], js)
    con.register("candidates", table)
    return con


@pytest.mark.parametrize("policy", [False, True])
def test_wpo_weight_and_implicit_margin(policy: bool) -> None:
    # n_tokens = 3 for every candidate: per-token log-probs are logprob / 3
    con = lp_prompt({"a": -3.0, "b": -6.0, "c": -9.0}, {"a": 1.0, "b": 0.5, "c": 0.0}, policy=policy)
    rows = instantiate(con, "pairs", {"strategies": ["all_pairs"], "weight_clip": 100.0}).to_pylist()
    lp = {"a": -1.0, "b": -2.0, "c": -3.0}
    sums = {(r["chosen_id"], r["rejected_id"]): lp[r["chosen_id"]] + lp[r["rejected_id"]] for r in rows}
    mean = sum(sums.values()) / 3  # -4
    for r in rows:
        key = (r["chosen_id"], r["rejected_id"])
        assert r["weight"] == pytest.approx(math.exp(sums[key] - mean), rel=1e-12)
        assert r["implicit_margin"] == pytest.approx(lp[key[0]] - lp[key[1]])
    assert [round(r["weight"], 6) for r in rows] == [round(math.exp(1), 6), 1.0, round(math.exp(-1), 6)]
    # clipped to [1/clip, clip]
    clipped = instantiate(con, "pairs", {"strategies": ["all_pairs"], "weight_clip": 2.0}).to_pylist()
    assert [r["weight"] for r in clipped] == [2.0, 1.0, 0.5]


def test_wpo_weight_is_one_without_logprobs() -> None:
    con = lp_prompt({"a": -3.0, "b": None, "c": -9.0}, {"a": 1.0, "b": 0.5, "c": 0.0})
    rows = instantiate(con, "pairs", {"strategies": ["all_pairs"]}).to_pylist()
    got = {(r["chosen_id"], r["rejected_id"]): (r["weight"], r["implicit_margin"]) for r in rows}
    assert got[("a", "b")] == (1.0, None)
    assert got[("b", "c")] == (1.0, None)
    assert got[("a", "c")] == (1.0, pytest.approx(2.0))  # the only pair with both: its own mean


def test_policy_logprob_takes_precedence() -> None:
    con = lp_prompt({"a": -3.0, "b": -6.0}, {"a": 1.0, "b": 0.0})
    rows = [cand("a", "p1", logprob=-3.0), cand("b", "p1", logprob=-6.0)]
    rows[0]["policy_logprob"], rows[1]["policy_logprob"] = -6.0, None
    cands = pa.Table.from_pylist(rows, schema=SCHEMAS["candidates"])
    con.register("candidates", cands)
    (row,) = instantiate(con, "pairs", {}).to_pylist()
    assert row["implicit_margin"] == pytest.approx(-2.0 - (-2.0))  # a: policy -6/3, b: falls back to -6/3


# --- selection -----------------------------------------------------------------------------------------


def test_explicit_implicit_and_bees_margins_report_removals() -> None:
    # a > b > c > d by score; per-token log-probs -1, -3, -2, None
    con = lp_prompt({"a": -3.0, "b": -9.0, "c": -6.0, "d": None}, {"a": 1.0, "b": 0.6, "c": 0.5, "d": 0.0})
    base = {"strategies": ["all_pairs"]}
    report = instantiate_with_report(con, "pairs", {**base, "min_margin": 0.45})
    assert [(r["chosen_id"], r["rejected_id"]) for r in report.table.to_pylist()] == [
        ("a", "c"),
        ("a", "d"),
        ("b", "d"),
        ("c", "d"),
    ]
    assert report.removed == {"explicit_margin": 2}  # a-b (0.4), b-c (0.1)
    assert report.rows_before_selection == 6

    implicit = instantiate_with_report(con, "pairs", {**base, "min_implicit_margin": 0.5})
    kept = [(r["chosen_id"], r["rejected_id"]) for r in implicit.table.to_pylist()]
    assert kept == [("a", "b"), ("a", "c")]
    assert implicit.removed == {"implicit_margin": 1, "implicit_margin_unknown": 3}  # b-c: -1; d: no lp

    bees = instantiate_with_report(con, "pairs", {**base, "min_margin": 0.45, "min_implicit_margin": 0.5})
    assert [(r["chosen_id"], r["rejected_id"]) for r in bees.table.to_pylist()] == [("a", "c")]
    assert bees.removed == {"explicit_margin": 2, "implicit_margin_unknown": 3}


def test_ensemble_spread_band() -> None:
    cands = [cand(c, "p1") for c in "abc"]
    js = [
        judg("p1", "a", 1.0, judge="j1"),
        judg("p1", "a", 0.6, judge="j2"),  # a: mean 0.8, spread 0.2
        judg("p1", "b", 0.5, judge="j1"),
        judg("p1", "b", 0.5, judge="j2"),  # b: spread 0
        judg("p1", "c", 0.0, judge="j1"),
        judg("p1", "c", 0.2, judge="j2"),  # c: mean 0.1, spread 0.1
    ]
    con = connect([prompt("p1")], cands, js)
    base = {"strategies": ["all_pairs"]}
    low = instantiate_with_report(con, "pairs", {**base, "max_spread": 0.15})
    assert [(r["chosen_id"], r["rejected_id"]) for r in low.table.to_pylist()] == [("b", "c")]
    assert low.removed == {"spread_above_max": 2}
    high = instantiate_with_report(con, "pairs", {**base, "min_spread": 0.15})  # keep the contested ones
    assert [(r["chosen_id"], r["rejected_id"]) for r in high.table.to_pylist()] == [("a", "b"), ("a", "c")]
    assert high.removed == {"spread_below_min": 1}
    points = instantiate_with_report(con, "points", {"max_spread": 0.15})
    assert [r["candidate_id"] for r in points.table.to_pylist()] == ["b", "c"]
    assert points.removed == {"spread_above_max": 1}


def swap_con(extra: list[Row]) -> Any:
    cands, js = scored("p1", {"a": 1.0, "b": 0.5, "c": 0.0})
    return connect([prompt("p1")], cands, js + extra)


def test_swap_inconsistency_and_judge_preference() -> None:
    verdicts = [
        # candidate_id is the response shown first; ab shows the lower id first, ba the higher
        # a vs b: ab prefers a (first, 0.9), ba prefers a (shown second: P(b) = 0.2): consistent
        pair_judg("a", "b", "ab", 0.9),
        pair_judg("b", "a", "ba", 0.2),
        # a vs c: each order prefers the response shown first (P(a) 0.7 in ab, P(c) 0.8 in ba): bias
        pair_judg("a", "c", "ab", 0.7),
        pair_judg("c", "a", "ba", 0.8),
        # b vs c: one order only, and an unparseable verdict that must be ignored
        pair_judg("b", "c", "ab", 0.6),
        pair_judg("c", "b", "ba", None, parse_error="no verdict"),
    ]
    con = swap_con(verdicts)
    report = instantiate_with_report(con, "pairs", {"strategies": ["all_pairs"]})
    rows = {(r["chosen_id"], r["rejected_id"]): r for r in report.table.to_pylist()}
    assert set(rows) == {("a", "b"), ("b", "c")}
    assert report.removed == {"swap_inconsistent": 1}
    assert rows[("a", "b")]["swap_inconsistent"] is False
    assert rows[("a", "b")]["judge_preference"] == pytest.approx((0.9 + 0.8) / 2)
    assert rows[("b", "c")]["swap_inconsistent"] is None  # only one order seen
    assert rows[("b", "c")]["judge_preference"] == pytest.approx(0.6)
    params = {"strategies": ["all_pairs"], "drop_swap_inconsistent": False}
    kept = instantiate_with_report(con, "pairs", params)
    ac = next(r for r in kept.table.to_pylist() if (r["chosen_id"], r["rejected_id"]) == ("a", "c"))
    assert ac["swap_inconsistent"] is True
    assert ac["judge_preference"] == pytest.approx((0.7 + (1 - 0.8)) / 2)
    assert kept.removed == {}


def test_judge_entropy_band() -> None:
    con = swap_con([pair_judg("a", "b", "ab", 0.5), pair_judg("a", "b", "ba", 0.5)])
    rows = instantiate(con, "pairs", {"strategies": ["all_pairs"]}).to_pylist()
    entropy = {(r["chosen_id"], r["rejected_id"]): r["judge_entropy"] for r in rows}
    assert entropy[("a", "b")] == pytest.approx(1.0)  # the judge cannot tell
    # a vs c: no pair verdict on them, so soft_label (tau 1) of the margin: a's score is the mean of
    # its point score 1.0 and the pair judge's win rate 0.5, c's is 0.0
    p = 1 / (1 + math.exp(-0.75))
    assert entropy[("a", "c")] == pytest.approx(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))
    report = instantiate_with_report(con, "pairs", {"strategies": ["all_pairs"], "max_entropy": 0.99})
    assert [(r["chosen_id"], r["rejected_id"]) for r in report.table.to_pylist()] == [("a", "c"), ("b", "c")]
    assert report.removed == {"entropy_above_max": 1}
    band = instantiate_with_report(con, "pairs", {"strategies": ["all_pairs"], "min_entropy": 0.95})
    assert band.removed == {"entropy_below_min": 1}  # a-c: 0.9054 bits


# --- diversity (DivPO) ---------------------------------------------------------------------------------


def test_diverse_pairs_with_given_embeddings() -> None:
    # high half (score >= median 0.5): a, b, c; low half: d, e, f
    scores = {"a": 1.0, "b": 0.9, "c": 0.5, "d": 0.4, "e": 0.1, "f": 0.0}
    vectors = {
        "a": [1.0, 0.0, 0.0],
        "b": [1.0, 0.0, 0.0],  # a twin of a
        "c": [0.0, 0.0, 1.0],  # the most distinct good one
        "d": [0.8, 0.6, 0.0],
        "e": [0.6, 0.8, 0.0],
        "f": [0.0, 1.0, 0.0],
    }
    con = connect([prompt("p1")], *scored("p1", scores))

    def fake_embed(texts: list[str]) -> np.ndarray:
        return np.array([vectors[t.removeprefix("response ")] for t in texts], dtype=np.float32)

    table = embed_candidates(con, fake_embed)
    assert table.num_rows == 6 and table.column("candidate_id").to_pylist() == sorted(scores)
    unit = np.array(list(vectors.values()))
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    distinct = {c: 1 - (sims[i].sum() - 1) / 5 for i, c in enumerate(vectors)}
    low = min(("d", "e", "f"), key=lambda c: distinct[c])
    (row,) = instantiate(con, "pairs", {"strategies": ["diverse"]}).to_pylist()
    assert (row["chosen_id"], row["rejected_id"], row["strategy"]) == ("c", low, "diverse")
    assert low == "d"
    # a higher quantile leaves only a in the high group
    (top,) = instantiate(con, "pairs", {"strategies": ["diverse"], "diversity_quantile": 0.9}).to_pylist()
    assert top["chosen_id"] == "a"


def test_diverse_pairs_without_embeddings_make_none() -> None:
    con = connect([prompt("p1")], *scored("p1", {"a": 1.0, "b": 0.0}))
    assert instantiate(con, "pairs", {"strategies": ["diverse"]}).num_rows == 0
    empty = embeddings_table([], np.zeros((0, 0), np.float32))
    assert empty.num_rows == 0


# --- points: KTO labels -----------------------------------------------------------------------------------


def test_points_quantile_labels() -> None:
    con = connect([prompt("p1")], *scored("p1", {"a": 0.0, "b": 0.25, "c": 0.5, "d": 0.75, "e": 1.0}))
    report = instantiate_with_report(con, "points", {"label_rule": "quantile", "label_quantile": 0.25})
    got = {r["candidate_id"]: r["label"] for r in report.table.to_pylist()}
    assert got == {"a": False, "b": False, "d": True, "e": True}
    assert report.removed == {"quantile_middle": 1}
    # all scores equal: no desirable / undesirable split
    con = connect([prompt("p1")], *scored("p1", {"a": 0.5, "b": 0.5, "c": 0.5}))
    report = instantiate_with_report(con, "points", {"label_rule": "quantile"})
    assert report.table.num_rows == 0 and report.removed == {"quantile_middle": 3}
    # the threshold rule keeps every row
    assert instantiate_with_report(con, "points", {"label_threshold": 0.5}).removed == {}
    with pytest.raises(QueryError, match=r"\$label_rule must be 'threshold' or 'quantile'"):
        instantiate(con, "points", {"label_rule": "median"})
    with pytest.raises(QueryError, match=r"\$label_quantile must be in \(0, 0.5\]"):
        instantiate(con, "points", {"label_rule": "quantile", "label_quantile": 0.75})
