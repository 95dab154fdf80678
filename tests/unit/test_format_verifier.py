"""The format verifier: JSON schema, regex and length checks, and its recipe validation."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from prefmill.errors import RecipeError
from prefmill.recipe import FormatVerifier, parse_recipe
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation import judge_shard
from prefmill.tasks.evaluation.format_check import check_format, json_payload

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def verdicts(config: FormatVerifier, responses: list[str | None]) -> list[dict]:
    n = len(responses)
    cands = pa.table(
        {
            "candidate_id": [f"c{i}" for i in range(n)],
            "prompt_id": ["p"] * n,
            "response": responses,
            "reference": ["ref" if i % 2 else None for i in range(n)],  # with or without: all judged
        }
    )
    out = judge_shard(cands, [config])
    conform("judgments", out)
    assert out.column("candidate_id").to_pylist() == [f"c{i}" for i in range(n)]
    return out.to_pylist()


def test_json_schema() -> None:
    config = FormatVerifier(kind="format", json_schema=PERSON)
    rows = verdicts(
        config,
        [
            '{"name": "Ada", "age": 36}',
            'Sure:\n```json\n{"name": "Ada", "age": 36}\n```\nDone.',
            '{"name": "Ada", "age": -1}',
            '{"name": "Ada"}',
            "{name: Ada}",
            None,
        ],
    )
    assert [r["score"] for r in rows] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert rows[0]["rationale"] == "all 1 checks passed"
    assert rows[2]["rationale"] == "json: schema violation at age: -1 is less than the minimum of 0"
    assert rows[3]["rationale"] == "json: schema violation at top level: 'age' is a required property"
    assert rows[4]["rationale"].startswith("json: not valid JSON (Expecting property name")
    assert json.loads(rows[0]["raw"]) == {"json": True}
    assert {(r["judge"], r["kind"], r["mode"]) for r in rows} == {("format-verifier", "verifier", "point")}


def test_regex_and_lengths_together() -> None:
    config = FormatVerifier(
        kind="format", name="short-yes-no", regex=r"(?i)(yes|no)\.?", fullmatch=True, max_words=3, min_chars=2
    )
    rows = verdicts(config, ["Yes.", "  no  ", "Maybe", "yes yes yes yes", "y"])
    assert [r["score"] for r in rows] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert rows[0]["rationale"] == "all 3 checks passed"
    assert rows[2]["rationale"] == "regex: no full match for '(?i)(yes|no)\\\\.?'"
    assert rows[3]["rationale"] == ("regex: no full match for '(?i)(yes|no)\\\\.?'; words: 4 > 3")
    assert rows[4]["rationale"] == "regex: no full match for '(?i)(yes|no)\\\\.?'; chars: 1 < 2"
    assert json.loads(rows[3]["raw"]) == {"chars": 15, "regex": False, "words": 4}
    assert {r["judge"] for r in rows} == {"short-yes-no"}


def test_search_vs_fullmatch_and_bounds() -> None:
    assert check_format("The answer: 42", FormatVerifier(kind="format", regex=r"\d+"))[0] == []
    assert check_format("The answer: 42", FormatVerifier(kind="format", regex=r"\d+", fullmatch=True))[0]
    assert check_format("a b c", FormatVerifier(kind="format", min_words=3, max_words=3))[0] == []
    assert check_format("a b", FormatVerifier(kind="format", min_words=3))[0] == ["words: 2 < 3"]
    assert check_format("abcdef", FormatVerifier(kind="format", max_chars=5))[0] == ["chars: 6 > 5"]


def test_json_payload() -> None:
    assert json_payload('x\n```json\n{"a": 1}\n```') == '{"a": 1}'
    assert json_payload("```\n[1, 2]\n```") == "[1, 2]"
    assert json_payload('  {"a": 1} ') == '{"a": 1}'


def test_recipe_validation_names_line_and_problem() -> None:
    base = "dataset: d\nprompts:\n  sources:\n    - {kind: arithmetic, n: 2}\nevaluation:\n  judges:\n"
    with pytest.raises(
        RecipeError, match=r"r\.yaml line 7: evaluation\.judges\[0\]: a format verifier needs"
    ):
        parse_recipe(base + "    - kind: format\n", name="r.yaml")
    with pytest.raises(RecipeError, match=r"line 8: evaluation\.judges\[0\]\.regex: not a valid regular"):
        parse_recipe(base + "    - kind: format\n      regex: '(unclosed'\n", name="r.yaml")
    with pytest.raises(RecipeError, match=r"json_schema is not a valid JSON Schema"):
        parse_recipe(base + "    - kind: format\n      json_schema: {type: nope}\n", name="r.yaml")
    recipe = parse_recipe(
        base + "    - kind: format\n      json_schema: {type: object}\n      max_words: 50\n", name="r.yaml"
    )
    (judge,) = recipe.evaluation.judges
    assert isinstance(judge, FormatVerifier) and judge.json_schema == {"type": "object"}
    assert hash(judge) == hash(FormatVerifier(kind="format", json_schema={"type": "object"}, max_words=50))
