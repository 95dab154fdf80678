"""scores.sql aggregation (mean / median / vote), pair judges' win rates, and uncertainty columns
(ensemble spread, swap inconsistency) against hand-computed values on hand-made judgments."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from prefmill.errors import QueryError
from prefmill.ids import content_id
from prefmill.recipe import parse_recipe
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import bind_candidate_scores, instantiate

Row = dict[str, Any]


def cand(cid: str, pid: str = "p1") -> Row:
    return {
        "candidate_id": cid,
        "prompt_id": pid,
        "response": f"response {cid}",
        "generator": "test:model",
        "origin": "offline",
        "sampling": None,
        "sample_index": 0,
        "n_tokens": 3,
        "prompt_tokens": 5,
        "finish_reason": "stop",
        "logprob": None,
        "latency_ms": None,
        "error": None,
    }


def point(cid: str, judge: str, score: float, n: int = 0) -> Row:
    return judgment(cid, judge, score=score, mode="point", salt=n)


def pair(
    first: str, second: str, judge: str, order: str, prefers_first: float, parse_error: str | None = None
) -> Row:
    return judgment(
        first, judge, mode="pair", other=second, order=order, prefers=prefers_first, error=parse_error
    )


def judgment(
    cid: str,
    judge: str,
    *,
    mode: str,
    score: float | None = None,
    other: str | None = None,
    order: str | None = None,
    prefers: float | None = None,
    error: str | None = None,
    salt: int = 0,
) -> Row:
    return {
        "judgment_id": content_id([cid, judge, mode, other, order, salt]),
        "prompt_id": "p1",
        "candidate_id": cid,
        "other_candidate_id": other,
        "judge": judge,
        "kind": "llm",
        "mode": mode,
        "criterion": "overall",
        "granularity": "outcome",
        "unit_index": None,
        "order": order,
        "score": score,
        "prefers_first": prefers,
        "rationale": None,
        "raw": None,
        "parse_error": error,
    }


POINTS = [
    # c1: judges 0, 1, 1
    point("c1", "j1", 0.0),
    point("c1", "j2", 1.0),
    point("c1", "j3", 1.0),
    # c2: j1 judged twice (0.2, 0.4 -> 0.3), j2 0.9
    point("c2", "j1", 0.2, n=0),
    point("c2", "j1", 0.4, n=1),
    point("c2", "j2", 0.9),
    # c3: one judge
    point("c3", "j1", 0.7),
    # c4: two judges, both no
    point("c4", "j1", 0.1),
    point("c4", "j2", 0.4),
]
PAIRS = [
    # position-swapped pair verdicts (candidate_id is the response shown first)
    pair("c1", "c2", "L", "ab", 0.8),  # c1 better
    pair("c2", "c1", "L", "ba", 0.3),  # c1 better: consistent
    pair("c1", "c3", "L", "ab", 0.9),  # c1 better
    pair("c3", "c1", "L", "ba", 0.6),  # c3 better: inconsistent
    pair("c2", "c3", "L", "ab", 0.7),  # one order only: not a swap
    pair("c1", "c2", "M", "ab", 0.5),  # a tie
    pair("c2", "c1", "M", "ba", 0.4),  # c1 better: inconsistent with a tie
    pair("c2", "c4", "N", "ab", 0.9),
    pair("c4", "c2", "N", "ba", 0.9, parse_error="unparseable"),  # not usable: no swap
]
JUDGMENTS = POINTS + PAIRS


def connect(judgments: list[Row] = POINTS) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    prompts = [{"prompt_id": "p1", "messages": [{"role": "user", "content": "q"}], "source": "t"}]
    con.register("prompts", pa.Table.from_pylist(prompts, schema=SCHEMAS["prompts"]))
    cands = [cand(c) for c in ("c1", "c2", "c3", "c4")]
    con.register("candidates", pa.Table.from_pylist(cands, schema=SCHEMAS["candidates"]))
    con.register("judgments", pa.Table.from_pylist(judgments, schema=SCHEMAS["judgments"]))
    return con


def scores(aggregation: str | None = None, judgments: list[Row] = POINTS) -> dict[str, Row]:
    con = connect(judgments)
    bind_candidate_scores(con, aggregation=aggregation)
    rows = con.sql("SELECT * FROM candidate_scores ORDER BY candidate_id").to_arrow_table().to_pylist()
    return {r["candidate_id"]: r for r in rows}


def test_mean_median_vote_and_spread() -> None:
    rows = scores()
    expected = {
        #      mean        median  vote  spread                         judgments judges
        "c1": (2 / 3, 1.0, 1.0, math.sqrt(2 / 9), 3, 3),
        "c2": (0.6, 0.6, 0.5, 0.3, 3, 2),
        "c3": (0.7, 0.7, 1.0, 0.0, 1, 1),
        "c4": (0.25, 0.25, 0.0, 0.15, 2, 2),
    }
    for cid, (mean, median, vote, spread, n_judgments, n_judges) in expected.items():
        r = rows[cid]
        assert r["score_mean"] == pytest.approx(mean, abs=1e-12)
        assert r["score_median"] == pytest.approx(median, abs=1e-12)
        assert r["score_vote"] == vote
        assert r["spread"] == pytest.approx(spread, abs=1e-12)
        assert (r["n_judgments"], r["n_judges"]) == (n_judgments, n_judges)
        assert r["score"] == pytest.approx(r["score_mean"], abs=1e-11)  # mean is the default (rounded)


def test_pair_judges_score_candidates_by_win_rate() -> None:
    rows = scores(judgments=PAIRS)
    # P(candidate better) per pair row: prefers_first when shown first, 1 - prefers_first when second
    # c1: L 0.8, 1-0.3, 0.9, 1-0.6 -> 0.7; M 0.5, 1-0.4 -> 0.55
    # c2: L 1-0.8, 0.3, 0.7 -> 0.4; M 1-0.5, 0.4 -> 0.45; N 0.9 (its 'ba' row has a parse error)
    # c3: L 1-0.9, 0.6, 1-0.7 -> 1/3;  c4: N 1-0.9 -> 0.1
    per_judge = {"c1": [0.7, 0.55], "c2": [0.4, 0.45, 0.9], "c3": [1 / 3], "c4": [0.1]}
    for cid, judged in per_judge.items():
        r = rows[cid]
        assert r["score_mean"] == pytest.approx(sum(judged) / len(judged), abs=1e-12), cid
        assert r["n_judges"] == len(judged)
    assert [rows[c]["n_judgments"] for c in ("c1", "c2", "c3", "c4")] == [6, 6, 3, 1]
    assert rows["c2"]["score_median"] == pytest.approx(0.45)
    assert rows["c2"]["score_vote"] == 0.0  # 1 of 3 judges at >= 0.5
    # a pair-only recipe makes pairs: c1 (0.625) over c4 (0.1)
    pairs = instantiate(connect(PAIRS), "pairs", {}).to_pylist()
    assert [(p["chosen_id"], p["rejected_id"]) for p in pairs] == [("c1", "c4")]
    assert pairs[0]["margin"] == pytest.approx(0.525)


def test_a_position_biased_pair_judge_gives_every_candidate_one_half() -> None:
    biased = [
        pair(a, b, "first", order, 1.0)
        for a, b, order in [("c1", "c2", "ab"), ("c2", "c1", "ba"), ("c1", "c3", "ab"), ("c3", "c1", "ba")]
    ]
    rows = scores(judgments=biased)
    assert {c: r["score"] for c, r in rows.items()} == {"c1": 0.5, "c2": 0.5, "c3": 0.5}
    assert instantiate(connect(biased), "pairs", {}).num_rows == 0  # ties never become pairs


def test_point_and_pair_judges_join_in_one_ensemble() -> None:
    rows = scores(judgments=JUDGMENTS)
    # c3: j1 0.7 and L's win rate 1/3
    assert rows["c3"]["score_mean"] == pytest.approx((0.7 + 1 / 3) / 2)
    assert (rows["c3"]["n_judges"], rows["c3"]["n_judgments"]) == (2, 4)


def test_swap_inconsistency() -> None:
    rows = scores(judgments=JUDGMENTS)
    # c1: L(c1,c2) consistent, L(c1,c3) inconsistent, M(c1,c2) inconsistent
    assert (rows["c1"]["swap_inconsistency"], rows["c1"]["n_swapped"]) == (pytest.approx(2 / 3), 3)
    # c2: L(c1,c2) consistent, M(c1,c2) inconsistent; L(c2,c3) has one order, N(c2,c4) a parse error
    assert (rows["c2"]["swap_inconsistency"], rows["c2"]["n_swapped"]) == (0.5, 2)
    assert (rows["c3"]["swap_inconsistency"], rows["c3"]["n_swapped"]) == (1.0, 1)
    assert (rows["c4"]["swap_inconsistency"], rows["c4"]["n_swapped"]) == (None, 0)


@pytest.mark.parametrize(
    ("aggregation", "column"), [("mean", "score_mean"), ("median", "score_median"), ("vote", "score_vote")]
)
def test_aggregation_picks_the_score(aggregation: str, column: str) -> None:
    rows = scores(aggregation)
    # `score` is the chosen column rounded to 12 decimals (float noise never separates equal scores)
    expected = pytest.approx({c: r[column] for c, r in rows.items()}, abs=1e-11)
    assert {c: r["score"] for c, r in rows.items()} == expected
    points = instantiate(connect(), "points", {"aggregation": aggregation}).to_pylist()
    assert {p["candidate_id"]: p["reward"] for p in points} == expected


def test_aggregation_changes_the_pairs() -> None:
    # mean: c3 (0.7) best, c4 (0.25) worst; median: c1 (1.0) best; vote: c1 and c3 tie at 1 (c1 wins on id)
    def best_vs_worst(aggregation: str) -> list[tuple[str, str, float]]:
        rows = instantiate(connect(), "pairs", {"aggregation": aggregation}).to_pylist()
        return [(p["chosen_id"], p["rejected_id"], round(p["margin"], 12)) for p in rows]

    assert best_vs_worst("mean") == [("c3", "c4", 0.45)]
    assert best_vs_worst("median") == [("c1", "c4", 0.75)]
    assert best_vs_worst("vote") == [("c1", "c4", 1.0)]


def test_bad_aggregation_is_a_query_error() -> None:
    with pytest.raises(QueryError, match=r"aggregation 'max' is not one of mean, median, vote"):
        bind_candidate_scores(connect(), aggregation="max")
    con = connect()
    bind_candidate_scores(con)
    con.execute("SET VARIABLE aggregation = 'max'")  # set by hand: the SQL itself refuses it
    with pytest.raises(duckdb.Error, match="aggregation must be mean, median or vote, not max"):
        con.sql("SELECT * FROM candidate_scores").fetchall()


def test_recipe_aggregation_enters_the_instantiation_version() -> None:
    from prefmill.flows.instantiation import output_config

    text = "dataset: d\nprompts:\n  sources:\n    - {kind: arithmetic, n: 2}\n"
    default = parse_recipe(text)
    median = parse_recipe(text + "evaluation:\n  aggregation: median\n")
    assert default.evaluation.aggregation == "mean"
    assert output_config(default, "points")[0]["params"]["aggregation"] == "mean"
    assert output_config(median, "points")[0]["params"]["aggregation"] == "median"
