"""The math verifier: extraction corpus, tolerance, expressions, and its judgments rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from prefmill.ids import content_id
from prefmill.recipe import MathVerifier
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation import judge_shard
from prefmill.tasks.evaluation.math_answer import expected_answer, normalize_math, verify_math

EXACT = MathVerifier(kind="math")

# (response, reference, correct?)
CORPUS: list[tuple[str, str, bool]] = [
    # boxed, with LaTeX spacing / thousands / fractions
    ("So the answer is \\boxed{2{,}500}.", "2500", True),
    ("\\boxed{1\\,000}", "1000", True),
    ("The result is \\boxed{\\dfrac{3}{4}}", "0.75", True),
    ("$\\boxed{-\\tfrac{1}{2}}$", "-0.5", True),
    ("\\boxed{x = 12} and later 99", "12", True),
    ("\\boxed{12\\text{ cm}}", "12 cm", True),
    ("The answer is 5 but really \\boxed{6}", "6", True),
    ("The answer is 5 but really \\boxed{6}", "5", False),
    # scientific notation
    ("The answer is 1.5e3 metres", "1500", True),
    ("\\boxed{3.5 \\times 10^{2}}", "350", True),
    ("It is 2.5 × 10^-3", "0.0025", True),
    # GSM8K markers and solutions as references
    ("Step 1: 3 * 4 = 12\nStep 2: 12 + 5 = 17\n#### 17", "17", True),
    ("#### 1,234", "She has 1234 left.\n#### 1234", True),
    ("#### 72", "Natalia sold 48/2 = 24 clips in May.\n#### 72", True),
    ("#### 71", "Natalia sold 48/2 = 24 clips in May.\n#### 72", False),
    # answer phrases, units, currency, signs
    ("I think 12... no, the answer is 15", "15", True),
    ("The answer is: 3.0 km/h", "3 km/h", True),
    ("It takes 12 hours in total.", "12 hours", True),
    ("Answer: $12.50", "$12.5", True),
    ("That costs $1,250 in total.", "1250", True),
    ("The result is −7.", "-7", True),
    ("The answer is -7", "$-7$", True),
    ("So x = 5.", "x = 5", True),
    ("The answer is 42", "\\boxed{42}", True),
    ("6/8 of the pie", "3/4", True),
    ("6/8 of the pie", "0.75", True),
    ("0.333", "1/3", False),
    ("50%", "0.5", False),  # only with percent_as_fraction
    ("3.14159", "3.14159265", False),  # only with a tolerance
    ("Tom has 5 apples. 5 + 3 = 8 apples.", "8", True),
    ("Tom has 5 apples. 5 + 3 = 8 apples.", "5", False),
    # non-numeric references: compared as normalised expressions
    ("\\boxed{\\sqrt{2}}", "\\sqrt{2}", True),
    ("The answer is $\\sqrt{ 2 }$.", "\\sqrt{2}", True),
    ("\\boxed{2\\pi}", "2\\pi", True),
    ("\\boxed{3\\pi}", "2\\pi", False),
    ("\\boxed{\\left(1, 2\\right)}", "(1,2)", True),
    # nothing to find
    ("I do not know.", "42", False),
    ("", "42", False),
]


@pytest.mark.parametrize(("response", "reference", "correct"), CORPUS)
def test_math_corpus(response: str, reference: str, correct: bool) -> None:
    score, reason, _ = verify_math(response, reference, EXACT)
    assert score == (1.0 if correct else 0.0), reason


def test_corpus_is_large_and_mixed() -> None:
    assert len(CORPUS) >= 35
    assert sum(c for *_, c in CORPUS) >= 20 and sum(not c for *_, c in CORPUS) >= 8


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("2{,}500", "2500"),
        ("1\\,000 and 1\u2009000", "1000 and 1000"),
        ("1.5e3", "1500"),
        ("2E-2", "0.02"),
        ("3 \\times 10^{4}", "30000"),
        ("\\dfrac{1}{2} \\%", "\\frac{1}{2} %"),
        ("e5 and x1e3", "e5 and x1e3"),  # not numbers
    ],
)
def test_normalize_math(text: str, normalised: str) -> None:
    assert normalize_math(text) == normalised


def test_expected_answer_kinds() -> None:
    assert expected_answer("12 hours") == ("number", "12")
    assert expected_answer("\\frac{3}{4}") == ("number", "3/4")
    assert expected_answer("x^2 + 1") == ("expression", "x^2+1")
    assert expected_answer("no number here at all in this long sentence") is None


def test_tolerance_and_percent_options() -> None:
    assert verify_math("3.14159", "3.14159265", MathVerifier(kind="math", rel_tol=1e-5))[0] == 1.0
    assert verify_math("3.1", "3.14159265", MathVerifier(kind="math", rel_tol=1e-5))[0] == 0.0
    assert verify_math("0.31", "0.3", MathVerifier(kind="math", abs_tol=0.02))[0] == 1.0
    assert verify_math("0.33", "0.3", MathVerifier(kind="math", abs_tol=0.02))[0] == 0.0
    score, reason, _ = verify_math("50%", "0.5", MathVerifier(kind="math", percent_as_fraction=True))
    assert (score, reason) == (1.0, "extracted 50, expected 0.5: correct (as a percentage)")
    assert verify_math("0.5", "50%", MathVerifier(kind="math", percent_as_fraction=True))[0] == 1.0
    assert verify_math("5", "0.5", MathVerifier(kind="math", percent_as_fraction=True))[0] == 0.0


def test_math_judgments_rows_skip_code_and_flag_bad_references() -> None:
    cands = pa.table(
        {
            "candidate_id": ["c0", "c1", "c2", "c3", "c4"],
            "prompt_id": ["p0", "p0", "p1", "p2", "p3"],
            "response": ["\\boxed{7}", "The answer is 8", "x", "def f(): pass", "7"],
            "reference": [
                "7",
                "7",
                "lots of words but not one single number",
                '{"tests": "assert f() == 7"}',
                None,
            ],
            "error": [None] * 5,
        }
    )
    out = judge_shard(cands, [MathVerifier(kind="math", name="mathv")])
    conform("judgments", out)
    rows = {r["candidate_id"]: r for r in out.to_pylist()}
    assert set(rows) == {"c0", "c1", "c2"}  # c3 is a code prompt, c4 has no reference
    assert (rows["c0"]["score"], rows["c0"]["raw"]) == (1.0, "7")
    assert rows["c1"]["score"] == 0.0 and rows["c1"]["rationale"] == "extracted 8, expected 7: wrong"
    assert rows["c2"]["score"] is None and "holds no answer" in rows["c2"]["parse_error"]
    for r in rows.values():
        assert (r["judge"], r["kind"], r["mode"]) == ("mathv", "verifier", "point")
        assert r["judgment_id"] == content_id(
            ["mathv", r["candidate_id"], None, "overall", "outcome", None, None]
        )
