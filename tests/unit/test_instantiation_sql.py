"""Instantiation SQL (prefmill/sql/*.sql) and its runner on small hand-made tables with known answers."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from prefmill.errors import QueryError, SchemaError
from prefmill.ids import content_id
from prefmill.sql import read_sql, sql_names
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import (
    DEFAULT_PARAMS,
    INSTANTIATION_CODE_VERSION,
    bind_candidate_scores,
    instantiate,
    sql_parameters,
)

Row = dict[str, Any]


# --- builders ---------------------------------------------------------------------------------------


def prompt(pid: str, user: str = "question?", messages: list[tuple[str, str]] | None = None) -> Row:
    msgs = messages if messages is not None else [("user", user)]
    return {
        "prompt_id": pid,
        "messages": [{"role": r, "content": c} for r, c in msgs],
        "source": "test",
        "reference": None,
        "rubric": None,
        "meta": None,
    }


def cand(
    cid: str,
    pid: str,
    response: str | None = "__default__",
    error: str | None = None,
    logprob: float | None = None,
) -> Row:
    return {
        "candidate_id": cid,
        "prompt_id": pid,
        "response": f"response {cid}" if response == "__default__" else response,
        "generator": "test:model",
        "origin": "offline",
        "sampling": None,
        "sample_index": 0,
        "n_tokens": 3,
        "prompt_tokens": 5,
        "finish_reason": "stop",
        "logprob": logprob,
        "latency_ms": None,
        "error": error,
    }


def judg(
    pid: str,
    cid: str,
    score: float | None,
    judge: str = "j1",
    criterion: str = "overall",
    mode: str = "point",
    granularity: str = "outcome",
    parse_error: str | None = None,
    other: str | None = None,
) -> Row:
    return {
        "judgment_id": content_id([pid, cid, judge, criterion, mode, granularity, score, parse_error, other]),
        "prompt_id": pid,
        "candidate_id": cid,
        "other_candidate_id": other,
        "judge": judge,
        "kind": "llm",
        "mode": mode,
        "criterion": criterion,
        "granularity": granularity,
        "unit_index": None,
        "order": None,
        "score": score,
        "prefers_first": None,
        "rationale": None,
        "raw": None,
        "parse_error": parse_error,
    }


def connect(prompts: list[Row], candidates: list[Row], judgments: list[Row]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.register("prompts", pa.Table.from_pylist(prompts, schema=SCHEMAS["prompts"]))
    con.register("candidates", pa.Table.from_pylist(candidates, schema=SCHEMAS["candidates"]))
    con.register("judgments", pa.Table.from_pylist(judgments, schema=SCHEMAS["judgments"]))
    return con


def scored(pid: str, scores: dict[str, float], criterion: str = "overall") -> tuple[list[Row], list[Row]]:
    """Candidates of ``pid`` with one judge's score each."""
    cands = [cand(cid, pid) for cid in scores]
    judgments = [judg(pid, cid, s, criterion=criterion) for cid, s in scores.items()]
    return cands, judgments


def one_prompt(scores: dict[str, float], pid: str = "p1") -> duckdb.DuckDBPyConnection:
    cands, judgments = scored(pid, scores)
    return connect([prompt(pid)], cands, judgments)


def run(con: duckdb.DuckDBPyConnection, output: str, **params: object) -> list[Row]:
    return instantiate(con, output, params).to_pylist()


def scores_view(con: duckdb.DuckDBPyConnection) -> list[Row]:
    bind_candidate_scores(con)
    # the aggregation and swap columns are tested in test_aggregation_sql.py
    extra = "score_mean, score_median, score_vote, swap_inconsistency, n_swapped"
    sql = f"SELECT * EXCLUDE ({extra}) FROM candidate_scores ORDER BY prompt_id, criterion, candidate_id"
    return con.sql(sql).to_arrow_table().to_pylist()


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- constants and loader ---------------------------------------------------------------------------


def test_constants_and_builtin_files() -> None:
    assert INSTANTIATION_CODE_VERSION == "2"
    assert {"min_margin": 0.0, "tau": 1.0, "label_threshold": 0.5}.items() <= DEFAULT_PARAMS.items()
    assert {"lists", "pairs", "points", "scores", "selection"} <= set(sql_names())
    assert read_sql("pairs") == read_sql("pairs.sql")
    for name in sql_names():
        assert read_sql(name).startswith("-- ")  # every file opens with its comment block
    with pytest.raises(QueryError, match=r"no built-in SQL file 'nope\.sql'.*lists, pairs, points"):
        read_sql("nope")


def test_parameters_used_by_builtin_files() -> None:
    assert sql_parameters(read_sql("pairs")) == {
        "strategies",
        "seed",
        "diversity_quantile",
        "tau",
        "weight_clip",
    }
    assert sql_parameters(read_sql("selection")) == {
        "min_margin",
        "min_implicit_margin",
        "min_spread",
        "max_spread",
        "drop_swap_inconsistent",
        "min_entropy",
        "max_entropy",
    }
    assert sql_parameters(read_sql("points")) == {
        "label_rule",
        "label_threshold",
        "label_quantile",
        "min_spread",
        "max_spread",
    }
    assert sql_parameters(read_sql("lists")) == set()
    assert sql_parameters(read_sql("scores")) == set()
    # names in comments and string literals do not count
    assert sql_parameters("-- uses $tau\nSELECT $a AS x, '$b' AS y -- and $c\n") == {"a"}


# --- candidate_scores --------------------------------------------------------------------------------


def test_candidate_scores_prompt_text_and_exclusions() -> None:
    messages = [("system", "be brief"), ("user", "first"), ("assistant", "ok"), ("user", "last question")]
    prompts = [prompt("p1", messages=messages), prompt("p2", messages=[("system", "no user turn")])]
    candidates = [
        cand("c1", "p1", logprob=-1.5),
        cand("c2", "p1"),
        cand("c3", "p1", error="timeout", response=None),  # failed generation
        cand("c4", "p1", response=None),  # no response
        cand("c5", "p1", error="length", response="partial"),  # error with text: still excluded
        cand("c6", "p1"),  # only unusable judgments
        cand("c7", "p2"),
    ]
    judgments = [
        judg("p1", "c1", 0.75),
        judg("p1", "c1", None, judge="j2"),  # null score: excluded
        judg("p1", "c1", 0.0, judge="j3", parse_error="no score found"),  # parse error: excluded
        judg("p1", "c1", 0.0, judge="j4", granularity="step"),  # not outcome: excluded
        judg("p1", "c1", 0.0, judge="j5", mode="pair", other="c2"),  # not point mode: excluded
        judg("p1", "c2", 0.25),
        judg("p1", "c3", 1.0),
        judg("p1", "c4", 1.0),
        judg("p1", "c5", 1.0),
        judg("p1", "c6", None),
        judg("p1", "c6", 1.0, judge="j2", parse_error="bad json"),
        judg("p2", "c7", 0.5),
    ]
    rows = scores_view(connect(prompts, candidates, judgments))
    assert rows == [
        {
            "prompt_id": "p1",
            "candidate_id": "c1",
            "criterion": "overall",
            "prompt": "last question",
            "response": "response c1",
            "logprob": -1.5,
            "n_tokens": 3,
            "score": 0.75,
            "spread": 0.0,
            "n_judgments": 1,
            "n_judges": 1,
            "logprob_per_token": -0.5,
        },
        {
            "prompt_id": "p1",
            "candidate_id": "c2",
            "criterion": "overall",
            "prompt": "last question",
            "response": "response c2",
            "logprob": None,
            "n_tokens": 3,
            "score": 0.25,
            "spread": 0.0,
            "n_judgments": 1,
            "n_judges": 1,
            "logprob_per_token": None,
        },
        {
            "prompt_id": "p2",
            "candidate_id": "c7",
            "criterion": "overall",
            "prompt": None,
            "response": "response c7",
            "logprob": None,
            "n_tokens": 3,
            "score": 0.5,
            "spread": 0.0,
            "n_judgments": 1,
            "n_judges": 1,
            "logprob_per_token": None,
        },
    ]


def test_candidate_scores_two_judges_mean_and_spread() -> None:
    candidates = [cand("c1", "p1"), cand("c2", "p1")]
    judgments = [
        judg("p1", "c1", 1.0, judge="j1"),
        judg("p1", "c1", 0.5, judge="j2"),
        judg("p1", "c2", 0.0, judge="j1"),
        # one judge scoring twice counts as one judge: its mean (0.25) enters score and spread
        judg("p1", "c2", 0.0, judge="j2"),
        judg("p1", "c2", 0.5, judge="j2"),
    ]
    rows = scores_view(connect([prompt("p1")], candidates, judgments))
    got = {(r["candidate_id"]): (r["score"], r["spread"], r["n_judgments"], r["n_judges"]) for r in rows}
    assert got == {"c1": (0.75, 0.25, 2, 2), "c2": (0.125, 0.125, 3, 2)}


# --- pairs -------------------------------------------------------------------------------------------


FOUR = {"c1": 1.0, "c2": 0.25, "c3": 0.75, "c4": 0.5}


def test_pairs_best_vs_worst_four_candidates() -> None:
    con = connect([prompt("p1", user="What is 2+2?")], *scored("p1", FOUR))
    rows = run(con, "pairs")
    assert len(rows) == 1
    row = rows[0]
    soft = row.pop("soft_label")
    assert row == {
        "pair_id": content_id(["c1", "c2", "overall", "best_vs_worst"]),
        "prompt_id": "p1",
        "prompt": "What is 2+2?",
        "chosen": "response c1",
        "rejected": "response c2",
        "chosen_id": "c1",
        "rejected_id": "c2",
        "chosen_score": 1.0,
        "rejected_score": 0.25,
        "margin": 0.75,
        "uncertainty": 0.0,
        "criterion": "overall",
        "weight": 1.0,
        "strategy": "best_vs_worst",
        "implicit_margin": None,  # no log-probs
        "judge_preference": soft,  # no pair-wise judge: the soft label stands in
        "judge_entropy": pytest.approx(0.9052723567690952, rel=1e-12),
        "swap_inconsistent": None,
    }
    assert soft == pytest.approx(sigmoid(0.75), rel=1e-15)
    assert soft == pytest.approx(0.679178699175393, rel=1e-12)
    # tau scales the margin
    (hot,) = run(con, "pairs", tau=0.5)
    assert hot["soft_label"] == pytest.approx(sigmoid(1.5), rel=1e-15)


def test_pairs_per_prompt_and_criterion() -> None:
    c1, j1 = scored("p1", {"a": 0.5, "b": 1.0})
    _, j2 = scored("p1", {"a": 1.0, "b": 0.0}, criterion="safety")
    c3, j3 = scored("p2", {"x": 0.0, "y": 0.25, "z": 0.0})
    con = connect([prompt("p1"), prompt("p2")], c1 + c3, j1 + j2 + j3)
    got = [
        (r["prompt_id"], r["criterion"], r["chosen_id"], r["rejected_id"], r["margin"])
        for r in run(con, "pairs")
    ]
    # p2: tie on the worst score (x, z) is broken by the smaller candidate_id
    assert got == [
        ("p1", "overall", "b", "a", 0.5),
        ("p1", "safety", "a", "b", 1.0),
        ("p2", "overall", "y", "x", 0.25),
    ]


def test_pairs_tie_break_on_best_score() -> None:
    con = one_prompt({"d": 1.0, "b": 1.0, "c": 0.0, "a": 0.0})
    (row,) = run(con, "pairs")
    assert (row["chosen_id"], row["rejected_id"]) == ("b", "a")


def test_ties_give_no_pair_whatever_min_margin() -> None:
    con = one_prompt({"c1": 0.7, "c2": 0.7, "c3": 0.7})
    assert run(con, "pairs") == []
    assert run(con, "pairs", min_margin=-1.0) == []


def test_single_candidate_gives_one_point_and_no_pair_or_list() -> None:
    con = one_prompt({"only": 0.75})
    assert run(con, "pairs") == []
    assert run(con, "lists") == []
    assert run(con, "points") == [
        {
            "point_id": content_id(["only", "overall"]),
            "prompt_id": "p1",
            "prompt": "question?",
            "completion": "response only",
            "candidate_id": "only",
            "reward": 0.75,
            "label": True,
            "criterion": "overall",
            "spread": 0.0,
        }
    ]


def test_errors_and_unparseable_judgments_are_left_out() -> None:
    candidates = [
        cand("good_hi", "p1"),
        cand("good_lo", "p1"),
        cand("failed", "p1", error="server 500", response=None),
        cand("unparsed", "p1"),
    ]
    judgments = [
        judg("p1", "good_hi", 0.75),
        judg("p1", "good_lo", 0.5),
        judg("p1", "good_lo", 0.0, judge="j2", parse_error="could not parse"),  # would lower good_lo
        judg("p1", "failed", 1.0),  # would be the best
        judg("p1", "unparsed", None),  # would be the worst if null counted as 0
        judg("p1", "unparsed", 0.0, judge="j2", parse_error="truncated"),
    ]
    con = connect([prompt("p1")], candidates, judgments)
    (pair,) = run(con, "pairs")
    assert (pair["chosen_id"], pair["rejected_id"], pair["margin"]) == ("good_hi", "good_lo", 0.25)
    assert [(p["candidate_id"], p["reward"]) for p in run(con, "points")] == [
        ("good_hi", 0.75),
        ("good_lo", 0.5),
    ]
    (lst,) = run(con, "lists")
    assert lst["candidate_ids"] == ["good_hi", "good_lo"]


def test_two_judges_uncertainty() -> None:
    candidates = [cand("c1", "p1"), cand("c2", "p1")]
    judgments = [
        judg("p1", "c1", 1.0, judge="j1"),
        judg("p1", "c1", 0.5, judge="j2"),
        judg("p1", "c2", 0.0, judge="j1"),
    ]
    (pair,) = run(connect([prompt("p1")], candidates, judgments), "pairs")
    assert (pair["chosen_score"], pair["rejected_score"], pair["margin"], pair["uncertainty"]) == (
        0.75,
        0.0,
        0.75,
        0.25,
    )


def test_min_margin_filter() -> None:
    c1, j1 = scored("p1", {"a": 1.0, "b": 0.5})  # margin 0.5
    c2, j2 = scored("p2", {"c": 1.0, "d": 0.0})  # margin 1.0
    con = connect([prompt("p1"), prompt("p2")], c1 + c2, j1 + j2)
    assert [r["prompt_id"] for r in run(con, "pairs")] == ["p1", "p2"]
    assert [r["prompt_id"] for r in run(con, "pairs", min_margin=0.5)] == ["p1", "p2"]  # >= keeps 0.5
    assert [r["prompt_id"] for r in run(con, "pairs", min_margin=0.75)] == ["p2"]
    assert run(con, "pairs", min_margin=1.5) == []


# --- points ------------------------------------------------------------------------------------------


def test_points_label_threshold() -> None:
    con = one_prompt({"a": 0.25, "b": 0.5, "c": 0.75})
    assert [(r["candidate_id"], r["reward"], r["label"]) for r in run(con, "points")] == [
        ("a", 0.25, False),
        ("b", 0.5, True),  # score >= threshold is desirable
        ("c", 0.75, True),
    ]
    assert [r["label"] for r in run(con, "points", label_threshold=0.8)] == [False, False, False]
    assert [r["label"] for r in run(con, "points", label_threshold=0)] == [True, True, True]


# --- lists -------------------------------------------------------------------------------------------


def test_lists_competition_ranks_and_advantages() -> None:
    con = one_prompt({"w": 0.25, "c": 0.5, "top": 1.0, "b": 0.5})
    (row,) = run(con, "lists")
    advantages = row.pop("advantages")
    assert row == {
        "list_id": content_id(["p1", "overall", "top", "b", "c", "w"]),
        "prompt_id": "p1",
        "prompt": "question?",
        "candidate_ids": ["top", "b", "c", "w"],
        "completions": ["response top", "response b", "response c", "response w"],
        "scores": [1.0, 0.5, 0.5, 0.25],
        "ranks": [1, 2, 2, 4],
        "criterion": "overall",
        "advantages_mean": [0.4375, -0.0625, -0.0625, -0.3125],  # Dr. GRPO: score - mean
        "zero_variance": False,
        "group_size": 4,
    }
    scores = [1.0, 0.5, 0.5, 0.25]
    mean = sum(scores) / 4  # 0.5625
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / 4)  # population stddev
    assert advantages == pytest.approx([(s - mean) / (sd + 1e-6) for s in scores], rel=1e-12)
    assert advantages == pytest.approx(
        [1.6059042423787, -0.2294148917684, -0.2294148917684, -1.1470744588419]
    )


def test_lists_all_equal_scores() -> None:
    # avg(0.7, 0.7, 0.7) is 0.6999999999999998 in floating point: advantages must still be exactly 0
    con = one_prompt({"c3": 0.7, "c1": 0.7, "c2": 0.7})
    (row,) = run(con, "lists")
    assert row["candidate_ids"] == ["c1", "c2", "c3"]
    assert row["scores"] == [0.7, 0.7, 0.7]
    assert row["ranks"] == [1, 1, 1]
    assert row["advantages"] == [0.0, 0.0, 0.0]
    assert row["advantages_mean"] == [0.0, 0.0, 0.0]
    assert row["zero_variance"] is True


def test_lists_two_candidates_and_multiple_groups() -> None:
    c1, j1 = scored("p1", {"a": 0.0, "b": 1.0})
    _, j2 = scored("p1", {"a": 1.0}, criterion="safety")  # one candidate for this criterion: no list
    con = connect([prompt("p1")], c1, j1 + j2)
    (row,) = run(con, "lists")
    assert (row["criterion"], row["candidate_ids"], row["ranks"]) == ("overall", ["b", "a"], [1, 2])
    # two values: mean 0.5, stddev_pop 0.5
    assert row["advantages"] == pytest.approx([0.5 / 0.500001, -0.5 / 0.500001], rel=1e-15)


# --- ids ---------------------------------------------------------------------------------------------


TRICKY = [
    "plain",
    "é ü 中文 😀",
    'quote " and \\ backslash',
    "newline\n tab\t cr\r bs\b ff\f",
    "controls \x00 \x01 \x0b \x0e \x0f \x1a \x1f \x7f",
    "typed escape \\u001F and \\\\u001F",
    "\u2028 line sep",
    "",
]


def test_content_id_macro_equals_python() -> None:
    con = connect([], [], [])
    bind_candidate_scores(con)
    for value in TRICKY:
        for lst in ([value], [value, "x", value], ["a", value]):
            got = con.execute("SELECT content_id($v::VARCHAR[])", {"v": lst}).fetchall()[0][0]
            assert got == content_id(lst), (lst, got)
    assert con.execute("SELECT content_id([]::VARCHAR[])").fetchall()[0][0] == content_id([])


@pytest.mark.parametrize("criterion", ["overall", "helpfulness", "naïve \x1f crit"])
def test_output_ids_equal_python_content_id(criterion: str) -> None:
    cands, judgments = scored("p1", {"c1": 1.0, "c2": 0.0, "c3": 0.5}, criterion=criterion)
    con = connect([prompt("p1")], cands, judgments)
    (pair,) = run(con, "pairs")
    assert pair["pair_id"] == content_id(["c1", "c2", criterion, "best_vs_worst"])
    assert [p["point_id"] for p in run(con, "points")] == [
        content_id([c, criterion]) for c in ("c1", "c2", "c3")
    ]
    (lst,) = run(con, "lists")
    assert lst["list_id"] == content_id(["p1", criterion, "c1", "c3", "c2"])


def test_ids_stable_across_runs_and_connections() -> None:
    def build() -> dict[str, list[str]]:
        con = one_prompt(FOUR)
        return {
            "pairs": [r["pair_id"] for r in run(con, "pairs")],
            "points": [r["point_id"] for r in run(con, "points")],
            "lists": [r["list_id"] for r in run(con, "lists")],
        }

    first = build()
    assert first == build()
    # pinned: an id that changes breaks caching and diffs of every existing dataset
    assert first["pairs"] == ["c0548b450c653b8b"] == [content_id(["c1", "c2", "overall", "best_vs_worst"])]
    assert first["points"][0] == "05330dd8314e4963" == content_id(["c1", "overall"])
    assert first["points"] == [content_id([c, "overall"]) for c in ("c1", "c2", "c3", "c4")]
    assert first["lists"] == ["4282b3b97b4226e0"] == [content_id(["p1", "overall", "c1", "c3", "c4", "c2"])]


# --- schemas -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["pairs", "points", "lists"])
def test_outputs_conform_to_schema(output: str) -> None:
    expected = SCHEMAS[output]
    for con in (one_prompt(FOUR), connect([], [], [])):  # with rows and empty
        table = instantiate(con, output, {})
        assert table.schema.names[: len(expected)] == expected.names
        for field in expected:
            assert table.schema.field(field.name).type == field.type
            assert table.schema.field(field.name).nullable == field.nullable
    extra = table.schema.names[len(expected) :]
    assert (
        extra
        == {
            "lists": ["criterion", "advantages_mean", "zero_variance", "group_size"],
            "pairs": ["implicit_margin", "judge_preference", "swap_inconsistent", "judge_entropy"],
            "points": ["spread"],
        }[output]
    )


# --- runner ------------------------------------------------------------------------------------------


def test_custom_sql_text_gets_only_its_parameters() -> None:
    con = one_prompt(FOUR)
    custom = """
    -- a user's pairs: $tau is only mentioned here, so it is not passed
    SELECT
        content_id([b.candidate_id, w.candidate_id, b.criterion, 'all_pairs']) AS pair_id,
        b.prompt_id, b.prompt, b.response AS chosen, w.response AS rejected,
        b.candidate_id AS chosen_id, w.candidate_id AS rejected_id,
        b.score AS chosen_score, w.score AS rejected_score, b.score - w.score AS margin,
        1.0::DOUBLE AS soft_label, 0.0::DOUBLE AS uncertainty, b.criterion, $pair_weight AS weight,
        'all_pairs' AS strategy
    FROM candidate_scores b JOIN candidate_scores w USING (prompt_id, criterion)
    WHERE b.score - w.score >= $min_margin AND b.score > w.score
    ORDER BY chosen_id, rejected_id;
    """
    table = instantiate(
        con, "pairs", {"pair_weight": 2.0, "min_margin": 0.5}, custom, sql_file="my_pairs.sql"
    )
    rows = table.to_pylist()
    assert [(r["chosen_id"], r["rejected_id"], r["margin"], r["weight"]) for r in rows] == [
        ("c1", "c2", 0.75, 2.0),
        ("c1", "c4", 0.5, 2.0),
        ("c3", "c2", 0.5, 2.0),
    ]
    assert rows[0]["pair_id"] == content_id(["c1", "c2", "overall", "all_pairs"])


def test_missing_parameter_is_named() -> None:
    con = one_prompt(FOUR)
    with pytest.raises(QueryError, match=r"\$pair_weight are used but not set"):
        instantiate(con, "pairs", {}, "SELECT $pair_weight AS weight", sql_file="my_pairs.sql")


def test_sql_error_names_output_and_file() -> None:
    con = one_prompt(FOUR)
    with pytest.raises(QueryError, match=r"instantiation of 'points' \(my_points\.sql\): .*no_such_column"):
        instantiate(
            con, "points", {}, "SELECT no_such_column FROM candidate_scores", sql_file="my_points.sql"
        )
    with pytest.raises(QueryError, match=r"instantiation of 'lists' \(custom SQL\): SQL does not parse"):
        instantiate(con, "lists", {}, "SELEC oops")
    with pytest.raises(QueryError, match=r"exactly one SELECT statement"):
        instantiate(con, "lists", {}, "SELECT 1; SELECT 2")
    with pytest.raises(QueryError, match=r"positional parameters"):
        instantiate(con, "lists", {}, "SELECT ? AS x")


def test_custom_sql_with_wrong_columns_fails_schema_check() -> None:
    con = one_prompt(FOUR)
    with pytest.raises(SchemaError, match=r"table 'points' \(my_points\.sql\): missing column 'point_id'"):
        instantiate(con, "points", {}, "SELECT * FROM candidate_scores", sql_file="my_points.sql")


def test_decimal_literals_in_custom_sql_become_double() -> None:
    # DuckDB types a bare 1.0 as DECIMAL(2,1); users write that, so the runner casts it to DOUBLE
    con = one_prompt(FOUR)
    custom = read_sql("points").replace("score AS reward", "0.5 AS reward")
    table = instantiate(con, "points", {}, custom)
    assert table.schema.field("reward").type == pa.float64()
    assert table.column("reward").to_pylist() == [0.5, 0.5, 0.5, 0.5]
    custom = read_sql("lists").replace("    scores,\n", "    [1.5, 0.5] AS scores,\n")
    assert custom != read_sql("lists")
    (row,) = instantiate(con, "lists", {}, custom).to_pylist()
    assert row["scores"] == [1.5, 0.5]


def test_bad_output_and_tau_rejected() -> None:
    con = one_prompt(FOUR)
    with pytest.raises(QueryError, match=r"unknown instantiation output 'triples'"):
        instantiate(con, "triples", {})
    for tau in (0, -1.0, "1", True):
        with pytest.raises(QueryError, match=r"\$tau must be a number > 0"):
            instantiate(con, "pairs", {"tau": tau})
    # tau is irrelevant to points, so a bad one does not matter there
    assert len(instantiate(con, "points", {"tau": 0})) == 4


def test_missing_input_view_is_a_query_error() -> None:
    con = duckdb.connect(":memory:")
    with pytest.raises(QueryError, match=r"candidate_scores from prefmill/sql/scores\.sql"):
        instantiate(con, "pairs", {})
