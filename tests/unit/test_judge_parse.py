"""The tolerant verdict parser on a corpus of real and malformed judge replies.

The ``SMOLLM2_*`` replies are what the embedded SmolLM2-135M wrote when asked for a JSON verdict: it
echoes instead of judging, and the parser must say so rather than invent a score.
"""

from __future__ import annotations

import pytest

from prefmill.tasks.evaluation.parse import (
    close_truncated,
    json_objects,
    parse_pair,
    parse_point,
    parse_rubric,
)

SMOLLM2_POINT = ["2+3 equals 5.", "2+3 = 5.\n\n[repair]\n2+3 = 5.", "The primary color is indeed red."]
SMOLLM2_PAIR = ["A: Paris is the capital of France. B: London is the capital of England."]

POINT_CASES = [
    ('{"score": 7, "rationale": "mostly right"}', 7.0, "mostly right"),
    ('```json\n{"score": 9, "rationale": "good"}\n```', 9.0, "good"),
    ('Here is my verdict: {"rating": "6", "reason": "ok"} Thanks!', 6.0, "ok"),
    ("{'score': 4, 'rationale': 'single quotes',}", 4.0, "single quotes"),
    ('{score: 3, rationale: "bare keys"}', 3.0, "bare keys"),
    ('{"score": {"score": 8}, "explanation": "nested"}', 8.0, "nested"),
    ("The response is accurate. Score: 8", 8.0, None),
    ("Rating: [[5]]", 5.0, None),
    ("I would give it 6/10 because it is fine.", 6.0, None),
    ("7 out of 10", 7.0, None),
    ("  9 ", 9.0, None),
    ("**Score:** 2", 2.0, None),
]


@pytest.mark.parametrize(("text", "score", "rationale"), POINT_CASES)
def test_point_replies_that_parse(text: str, score: float, rationale: str | None) -> None:
    v = parse_point(text, 1, 10)
    assert v.error is None
    assert v.score == score
    if rationale is not None:
        assert v.rationale == rationale
    else:
        assert v.rationale == text.strip()


@pytest.mark.parametrize("text", [*SMOLLM2_POINT, "", None, "   ", "It is a good answer.", "{not json"])
def test_point_replies_without_a_score_are_parse_errors(text: str | None) -> None:
    v = parse_point(text, 1, 10)
    assert v.score is None
    assert v.error is not None
    assert ("empty" in v.error) or ("no score found" in v.error)


def test_point_score_outside_the_scale_is_an_error() -> None:
    v = parse_point('{"score": 12}', 1, 10)
    assert v.error == "score 12 is outside the scale 1-10"
    assert parse_point('{"score": "great"}', 1, 10).error == "JSON 'score' is not a number: 'great'"


PAIR_CASES = [
    ('{"better": "A", "strength": 3, "rationale": "A is right"}', 1.0, "A is right"),
    ('{"better": "B", "strength": 1}', 0.5 - 1 / 6, None),
    ('{"better": "B"}', 0.5 - 2 / 6, None),  # default strength 2
    ('{"winner": "tie", "reason": "same"}', 0.5, "same"),
    ('{"better": "Response A", "strength": "2"}', 0.5 + 2 / 6, None),
    ("After comparing both, [[B]]", 0.5 - 2 / 6, "After comparing both, [[B]]"),
    ("[[C]]", 0.5, "[[C]]"),
    ("Winner: A. Strength: 3", 1.0, "Winner: A. Strength: 3"),
    ("Response B is clearly better than response A.", 0.5 - 2 / 6, None),
    ("Both responses are equally good.", 0.5, None),
]


@pytest.mark.parametrize(("text", "prefers_a", "rationale"), PAIR_CASES)
def test_pair_replies_that_parse(text: str, prefers_a: float, rationale: str | None) -> None:
    v = parse_pair(text)
    assert v.error is None
    assert v.prefers_a == pytest.approx(prefers_a)
    if rationale is not None:
        assert v.rationale == rationale


@pytest.mark.parametrize(
    "text", [*SMOLLM2_PAIR, "", None, "Response A: foo\nResponse B: bar", '{"better": "C++"}']
)
def test_pair_replies_without_a_verdict_are_parse_errors(text: str | None) -> None:
    v = parse_pair(text)
    assert v.prefers_a is None
    assert v.error


def test_rubric_json_patterns_and_missing_criteria() -> None:
    crit = ["helpfulness", "honesty", "conciseness"]
    v = parse_rubric(
        '{"helpfulness": 4, "Honesty": {"score": 5, "rationale": "true"}, "rationale": "x"}', crit, 1, 5
    )
    assert v.scores == {"helpfulness": 4.0, "honesty": 5.0, "conciseness": None}
    assert v.errors["conciseness"] == "no score for criterion 'conciseness'"
    assert v.errors["helpfulness"] is None and v.per_criterion_rationale == {"honesty": "true"}
    assert v.rationale == "x"
    v = parse_rubric("Helpfulness: 3\nHonesty - 2\n**Conciseness**: 9", crit, 1, 5)
    assert v.scores == {"helpfulness": 3.0, "honesty": 2.0, "conciseness": None}
    assert v.errors["conciseness"] == "score 9 is outside the scale 1-5"
    v = parse_rubric('{"scores": {"helpfulness": 2, "honesty": 2, "conciseness": 1}}', crit, 1, 5)
    assert v.scores == {"helpfulness": 2.0, "honesty": 2.0, "conciseness": 1.0}
    assert all(e is None for e in v.errors.values())


def test_json_objects_finds_objects_after_prose_and_in_fences() -> None:
    text = 'Sure! {"a": 1} and then ```json\n{"b": 2,}\n``` end'
    found = json_objects(text)
    assert {"a": 1} in found and {"b": 2} in found


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        # real replies of the embedded model under structured output, cut by max_new_tokens
        ('{"score":2,"rationale":"2.1.1.1.1', '{"score":2,"rationale":"2.1.1.1.1"}'),
        ('{"better":"B","strength":1,"rationale":"A is', '{"better":"B","strength":1,"rationale":"A is"}'),
        ('{"score":2,"rationale":"a \\', '{"score":2,"rationale":"a "}'),  # cut inside an escape
        ('{"score":2,"rat', '{"score":2,"rat": null}'),  # cut inside a key
        ('{"score":2,"rationale":', '{"score":2,"rationale": null}'),
        ('{"score":2,', '{"score":2}'),
        ('{"score":1', '{"score": null}'),  # "1" may be the start of "10": not trusted
        ('{"a": ["x", "y', '{"a": ["x", "y"]}'),
        ('{"a": {"b": tr', '{"a": {"b": null}}'),
        ('{"score": 2}', None),  # nothing open
    ],
)
def test_json_cut_off_by_the_token_limit_is_closed(text: str, closed: str | None) -> None:
    assert close_truncated(text) == closed


def test_a_verdict_before_a_cut_off_rationale_still_parses() -> None:
    assert parse_point('{"score":7,"rationale":"because it', 1, 10).score == 7
    assert (
        parse_pair(
            '{"better":"A","strength":3,"rationale":"A is',
        ).prefers_a
        == 1.0
    )
    cut = parse_point('{"score":1', 1, 10)  # the score itself was cut: an error, not a guess
    assert cut.score is None and "not a number" in cut.error
