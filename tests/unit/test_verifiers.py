"""Answer extraction, the arithmetic verifier, the heuristic judge and judge_shard."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from prefmill.errors import PrefmillError
from prefmill.ids import content_id
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation import (
    EVALUATION_CODE_VERSION,
    KNOWN_JUDGES,
    arithmetic_verifier,
    extract_final_number,
    heuristic_judge,
    judge_shard,
    numbers_equal,
)

EXTRACTION_CASES: list[tuple[str | None, str | None]] = [
    # answer phrases beat earlier numbers
    ("I think 12... no, the answer is 15", "15"),
    ("The answer is 45. (In 2023, 45 people came.)", "45"),
    ("First guess 3, final answer: 7", "7"),
    ("**Answer:** 42\n\nThat uses 3 steps.", "42"),
    ("The answer is **1,000**.", "1000"),
    ("The answer is $-5$.", "-5"),
    ("Answer = 42.0", "42"),
    ("answer: 0.10", "0.1"),
    ("The answer is approximately 3.50 metres.", "3.5"),
    # boxed and GSM8K markers beat everything else
    ("\\boxed{7}", "7"),
    ("So we get \\boxed{\\frac{3}{4}} of the pie, not 2.", "3/4"),
    ("\\boxed{x = 12} and later 99", "12"),
    ("The answer is 5 but really \\boxed{6}", "6"),
    ("#### 42", "42"),
    ("Step 1: 3 * 4 = 12\nStep 2: 12 + 5 = 17\n#### 17", "17"),
    ("Tom had 5 apples, then 3 more.\n#### 8\nThanks!", "8"),
    # "= n" at the end, then the last number
    ("24 + 18 = 42 (that's 6 times 7)", "42"),
    ("Tom has 5 apples. 5 + 3 = 8 apples.", "8"),
    ("5 - 3 = 2", "2"),
    ("That costs $1,250 in total.", "1250"),
    ("The final total is 1,234,567 grains", "1234567"),
    ("-3", "-3"),
    ("The result is −7.", "-7"),
    ("the temperature fell to -12 degrees", "-12"),
    ("3/4", "3/4"),
    ("6/8 of the pie", "3/4"),
    ("8/4", "2"),
    ("price 2.50 dollars", "2.5"),
    ("It is .5", "0.5"),
    ("He scored 50%.", "50"),
    ("Between 1,2 and 3, pick 3", "3"),
    ("Coordinates 3,4,5", "5"),
    # nothing to find
    ("no numbers here", None),
    ("x2 y", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_CASES)
def test_extract_final_number(text: str | None, expected: str | None) -> None:
    assert extract_final_number(text) == expected


def test_extraction_table_is_large_enough() -> None:
    assert len(EXTRACTION_CASES) >= 25


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("42", "42.0", True),
        ("0.75", "3/4", True),
        ("1,250", "1250", True),
        ("$5", "5", True),
        ("-3", "−3", True),
        ("6/8", "3/4", True),
        ("3", "4", False),
        ("0.333", "1/3", False),
        ("abc", "abc", False),
        (None, "1", False),
        ("1/0", "1/0", False),
    ],
)
def test_numbers_equal(a: str | None, b: str | None, equal: bool) -> None:
    assert numbers_equal(a, b) is equal


# --- arithmetic verifier ------------------------------------------------------------------------


def cands_table(responses: list[str | None], references: list[str | None], **extra: list[object]) -> pa.Table:
    n = len(responses)
    data: dict[str, object] = {
        "candidate_id": [f"c{i}" for i in range(n)],
        "prompt_id": [f"p{i % 2}" for i in range(n)],
        "response": responses,
        "reference": references,
    }
    data.update(extra)
    return pa.table(data)


def test_arithmetic_verifier_scores_and_rows() -> None:
    cands = cands_table(
        [
            "17 + 25 = 42",
            "I think it is 41.",
            "I do not know.",
            "irrelevant",
            "The answer is 72",
            "So 3/4 is 0.75",
            None,
        ],
        ["42", "42", "42", None, "Natalia sold 48 + 24 = 72 clips.\n#### 72", "3/4", "5"],
    )
    out = arithmetic_verifier(cands)
    conform("judgments", out)
    rows = {r["candidate_id"]: r for r in out.to_pylist()}
    assert set(rows) == {"c0", "c1", "c2", "c4", "c5", "c6"}  # c3 has no reference
    assert rows["c0"]["score"] == 1.0
    assert rows["c0"]["rationale"] == "extracted 42, expected 42: correct"
    assert rows["c0"]["raw"] == "42"
    assert rows["c1"]["score"] == 0.0
    assert rows["c1"]["rationale"] == "extracted 41, expected 42: wrong"
    assert rows["c2"]["score"] == 0.0 and rows["c2"]["raw"] is None
    assert rows["c2"]["rationale"] == "no number found in the response"
    assert rows["c2"]["parse_error"] is None
    assert rows["c4"]["score"] == 1.0  # GSM8K-style reference reduced to its final number
    assert rows["c5"]["score"] == 1.0  # 0.75 == 3/4
    assert rows["c6"]["score"] == 0.0  # null response
    for r in rows.values():
        assert (r["judge"], r["kind"], r["mode"], r["criterion"], r["granularity"]) == (
            "arithmetic-verifier",
            "verifier",
            "point",
            "overall",
            "outcome",
        )
        assert r["order"] is None and r["other_candidate_id"] is None and r["unit_index"] is None
        assert r["prefers_first"] is None
        assert r["judgment_id"] == content_id(
            ["arithmetic-verifier", r["candidate_id"], None, "overall", "outcome", None, None]
        )
    assert rows["c0"]["prompt_id"] == "p0" and rows["c1"]["prompt_id"] == "p1"


def test_reference_without_a_number_is_a_parse_error() -> None:
    out = arithmetic_verifier(cands_table(["42"], ["forty-two"])).to_pylist()
    assert out[0]["score"] is None
    assert "holds no number" in out[0]["parse_error"]


# --- heuristic ----------------------------------------------------------------------------------

GOOD = (
    "The sky looks blue because air molecules scatter short blue wavelengths of sunlight much more "
    "strongly than long red ones, so blue light reaches our eyes from every part of the sky."
)
OTHERS = [
    "Sunlight is scattered by the gases in the air, and blue light is scattered the most, which is why "
    "we see a blue sky during the day.",
    "Blue light has a shorter wavelength, so the atmosphere scatters it across the whole sky while "
    "other colours pass straight through.",
    "Because of Rayleigh scattering: tiny molecules in the atmosphere redirect blue light far more than "
    "red light, filling the sky with blue.",
]


def heuristic_scores(responses: list[str | None], finish: list[str] | None = None) -> list[float]:
    n = len(responses)
    table = pa.table(
        {
            "candidate_id": [f"c{i}" for i in range(n)],
            "prompt_id": ["p"] * n,
            "response": responses,
            "finish_reason": finish or ["stop"] * n,
            "n_tokens": pa.nulls(n, pa.int64()),
        }
    )
    out = heuristic_judge(table)
    conform("judgments", out)
    assert out["candidate_id"].to_pylist() == [f"c{i}" for i in range(n)]
    scores = out["score"].to_pylist()
    assert all(0.0 <= s <= 1.0 for s in scores)
    return scores


def test_heuristic_empty_scores_below_normal() -> None:
    scores = heuristic_scores([GOOD, "", "   ", None, *OTHERS])
    assert scores[1] == scores[2] == scores[3] == 0.0
    assert scores[0] > 0.5


def test_heuristic_truncated_scores_below_same_text_stopped() -> None:
    scores = heuristic_scores([GOOD, GOOD, *OTHERS], ["stop", "length", "stop", "stop", "stop"])
    assert scores[1] < scores[0]


def test_heuristic_repetitive_scores_below_non_repetitive() -> None:
    words = GOOD.split()
    repetitive = " ".join((words[:6] * 6)[: len(words)])  # same length, looping
    scores = heuristic_scores([GOOD, repetitive, *OTHERS])
    assert scores[1] < scores[0] * 0.5


def test_heuristic_does_not_reward_length() -> None:
    # A fluent, non-repetitive response ten times longer than its siblings.
    long = " ".join(f"{w}{i}" for i in range(10) for w in GOOD.split())
    scores = heuristic_scores([GOOD, long, *OTHERS])
    assert scores[1] < scores[0]
    # Even with only two candidates, the longer one is not scored higher.
    pair = heuristic_scores([GOOD, long])
    assert pair[1] <= pair[0] + 1e-12


def test_heuristic_rationale_and_raw_show_the_parts() -> None:
    table = pa.table(
        {
            "candidate_id": ["a", "b"],
            "prompt_id": ["p", "p"],
            "response": [GOOD, ""],
            "finish_reason": ["length", "stop"],
            "n_tokens": [40, 0],
        }
    )
    rows = heuristic_judge(table).to_pylist()
    assert rows[0]["rationale"] == "len 1.00 · rep 1.00 · stop 0.50"
    assert json.loads(rows[0]["raw"])["length"] == 40  # n_tokens is the length when set
    assert rows[1]["rationale"] == "empty response"
    assert {(r["judge"], r["kind"], r["mode"]) for r in rows} == {("heuristic", "verifier", "point")}


# --- judge_shard --------------------------------------------------------------------------------


def test_judge_shard_routes_rows_and_skips_errors() -> None:
    cands = pa.table(
        {
            "candidate_id": ["m1", "m2", "o1", "o2", "x1"],
            "prompt_id": ["pm", "pm", "po", "po", "po"],
            "response": ["The answer is 42", "41", GOOD, OTHERS[0], None],
            "reference": ["42", "42", None, None, None],
            "finish_reason": ["stop"] * 5,
            "n_tokens": [5, 1, 35, 30, None],
            "error": [None, None, None, None, "timeout"],
        }
    )
    out = judge_shard(cands, ["arithmetic", "heuristic"])
    conform("judgments", out)
    got = sorted(zip(out["judge"].to_pylist(), out["candidate_id"].to_pylist(), strict=True))
    assert got == [
        ("arithmetic-verifier", "m1"),
        ("arithmetic-verifier", "m2"),
        ("heuristic", "o1"),
        ("heuristic", "o2"),
    ]
    only_heuristic = judge_shard(cands, ["heuristic", "heuristic"])
    assert only_heuristic["candidate_id"].to_pylist() == ["o1", "o2"]
    assert judge_shard(cands.slice(0, 0), ["arithmetic"]).num_rows == 0


def test_judge_shard_unknown_judge_lists_known_ones() -> None:
    cands = cands_table(["1"], ["1"])
    with pytest.raises(PrefmillError, match=r"unknown judge.*'gpt-judge'.*arithmetic, heuristic"):
        judge_shard(cands, ["arithmetic", "gpt-judge"])
    assert {"arithmetic", "heuristic", "math", "code", "format", "reward_model", "human"} <= set(KNOWN_JUDGES)
    assert {"llm", "meta", "critique_revise"} <= set(KNOWN_JUDGES)
    assert EVALUATION_CODE_VERSION == "1"


def test_judge_shard_survives_all_null_columns() -> None:
    cands = pa.table(
        {
            "candidate_id": ["a", "b"],
            "prompt_id": ["p", "p"],
            "response": pa.nulls(2),
            "reference": pa.nulls(2),
            "finish_reason": pa.nulls(2),
            "n_tokens": pa.nulls(2),
            "error": pa.nulls(2),
        }
    )
    out = judge_shard(cands, ["arithmetic", "heuristic"])
    assert out["score"].to_pylist() == [0.0, 0.0]
    assert out["rationale"].to_pylist() == ["empty response", "empty response"]
