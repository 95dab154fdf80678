"""Step segmentation: the segmenters, the `steps` table, and the recipe's `steps` section errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from prefmill.errors import InputError, RecipeError
from prefmill.recipe import parse_recipe
from prefmill.storage.schemas import schema_for
from prefmill.tasks.steps.config import StepsConfig
from prefmill.tasks.steps.segment import split_steps, steps_table

CHAIN = "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14.\n\nStep 3: 14 - 5 = 9\nThe answer is 9."


def texts(text: str, **config: object) -> list[str]:
    return [s.text for s in split_steps(text, StepsConfig(**config))]


def test_lines_skip_blank_lines_and_spans_point_into_the_response() -> None:
    steps = split_steps(CHAIN, StepsConfig())
    assert [s.text for s in steps] == [
        "Step 1: 3 + 4 = 7",
        "Step 2: 7 * 2 = 14.",
        "Step 3: 14 - 5 = 9",
        "The answer is 9.",
    ]
    assert [s.index for s in steps] == [0, 1, 2, 3]
    assert all(CHAIN[s.char_start : s.char_end] == s.text for s in steps)


def test_step_n_sentences_and_regex() -> None:
    preamble = "Let us compute.\n" + CHAIN.replace("\n\n", " ")
    # the preamble belongs to the first step; the final sentence to the last one
    assert texts(preamble, segmenter="step-n") == [
        "Let us compute.\nStep 1: 3 + 4 = 7",
        "Step 2: 7 * 2 = 14.",
        "Step 3: 14 - 5 = 9\nThe answer is 9.",
    ]
    # decimals do not end a sentence; line breaks do
    assert texts("Pay 3.50 now. Then rest! Done?\nyes", segmenter="sentences") == [
        "Pay 3.50 now.",
        "Then rest!",
        "Done?",
        "yes",
    ]
    assert texts("a; b ;c", segmenter="regex", pattern=";") == ["a; b", ";c"]
    assert texts("in step 2 we add", segmenter="step-n") == ["in step 2 we add"]  # no label
    assert texts("no boundary here", segmenter="regex", pattern=r"\d") == ["no boundary here"]


def _cands(*responses: str | None) -> pa.Table:
    n = len(responses)
    return pa.table(
        {
            "candidate_id": [f"c{i}" for i in range(n)],
            "prompt_id": ["p"] * n,
            "response": list(responses),
            "error": [None if r is not None else "boom" for r in responses],
        }
    )


def test_steps_table_rows_prefixes_and_ids() -> None:
    table, stats = steps_table(_cands(CHAIN, None, "one line"), StepsConfig())
    assert table.schema == schema_for("steps")
    rows = table.to_pylist()
    assert [(r["candidate_id"], r["step_index"], r["n_steps"]) for r in rows] == [
        ("c0", 0, 4), ("c0", 1, 4), ("c0", 2, 4), ("c0", 3, 4), ("c2", 0, 1),
    ]  # fmt: skip
    assert rows[1]["prefix"] == "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14."
    assert rows[3]["prefix"] == CHAIN and rows[4]["prefix"] == "one line"
    assert len({r["step_id"] for r in rows}) == 5 and stats == {"steps": 5, "over_limit_skipped": 0}
    other, _ = steps_table(_cands(CHAIN), StepsConfig(segmenter="sentences"))
    assert not {r["step_id"] for r in rows} & set(other.column("step_id").to_pylist())


def test_max_steps_errors_naming_the_field_or_skips() -> None:
    with pytest.raises(
        InputError, match=r"^steps\.max_steps: candidate c0 has 4 steps, above the limit of 3"
    ):
        steps_table(_cands(CHAIN, "x"), StepsConfig(max_steps=3))
    table, stats = steps_table(_cands(CHAIN, "x"), StepsConfig(max_steps=3, over_limit="skip"))
    assert table.column("candidate_id").to_pylist() == ["c1"] and stats["over_limit_skipped"] == 1


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("{segmenter: regex, pattern: '(unclosed'}", r"steps\.pattern: '\(unclosed' does not compile"),
        ("{segmenter: regex}", r"steps\.pattern: the regex segmenter needs a pattern"),
        ("{segmenter: regex, pattern: 'x*'}", r"matches the empty string"),
        ("{segmenter: lines, max_steps: 0}", r"max_steps"),
        ("{segmenter: words}", r"segmenter"),
    ],
)
def test_bad_steps_sections_are_one_line_errors(steps: str, message: str) -> None:
    text = f"dataset: d\nprompts:\n  sources: [{{kind: arithmetic, n: 2}}]\nsteps: {steps}\n"
    with pytest.raises(RecipeError, match=message) as info:
        parse_recipe(text, name="r.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("r.yaml line 4")
