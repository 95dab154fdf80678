"""The fidelity gate on by default: default thresholds stop a judge that always answers "A" (its
position consistency and first-position rate), in one line naming the judge and the figure; a recipe
relaxes or turns them off; rule-based judges and tiny samples are not held to the defaults."""

from __future__ import annotations

from typing import Any

import pytest
from test_fidelity import cands, pair

from prefmill.recipe import FidelityConfig, parse_recipe
from prefmill.tasks.evaluation.fidelity import check_thresholds, enforce, fidelity_report, position_bias
from prefmill.tasks.evaluation.fidelity_gate import FidelityError
from prefmill.tasks.evaluation.llm_judge import judgments_table


def _scripted(n_pairs: int, answer: str, judge: str = "always-a") -> list[dict[str, Any]]:
    """A pair judge that answers ``answer`` whatever it is shown: "A" (prefers the first, 1.0),
    "B" (0.0) or "tie" (0.5), in both orders of ``n_pairs`` pairs."""
    p_first = {"A": 1.0, "B": 0.0, "tie": 0.5}[answer]
    rows = []
    for i in range(n_pairs):
        a, b, p = f"a{i:02d}", f"b{i:02d}", f"p{i}"
        # row 'ab' shows a first: P(a better) = p_first; row 'ba' shows b first: P(a better) = 1 - p_first
        rows += [pair(judge, a, b, "ab", p_first, prompt=p), pair(judge, a, b, "ba", 1 - p_first, prompt=p)]
    return rows


def _llm(**figures: Any) -> dict[str, Any]:
    return {"judges": {"j": {"kind": "llm", "rows": 40, "parse_failure_rate": 0.0, **figures}}}


def test_always_a_judge_fails_the_default_gate_in_one_line() -> None:
    rows = _scripted(12, "A")
    ids = {r["candidate_id"] for r in rows}
    report = fidelity_report(judgments_table(rows), cands(dict.fromkeys(sorted(ids), 5)))
    bias = report["judges"]["always-a"]["position_bias"]
    assert bias == {
        "verdicts": 24,
        "first": 24,
        "second": 0,
        "ties": 0,
        "tie_rate": 0.0,
        "n": 24,
        "first_rate": 1.0,
    }
    assert report["judges"]["always-a"]["position_consistency"]["rate"] == 0.0
    problems = check_thresholds(report, FidelityConfig())
    assert problems == [
        "judge 'always-a' too inconsistent: position consistency 0.000 < "
        "evaluation.fidelity.min_position_consistency 0.5 (over 12 verdicts)",
        "judge 'always-a' fails a fidelity check: share of verdicts favouring the first position 1.000 > "
        "evaluation.fidelity.max_first_position_rate 0.8 (over 24 verdicts)",
    ]
    with pytest.raises(FidelityError) as err:
        enforce(report, FidelityConfig(), "judgments@v1")
    assert "\n" not in str(err.value) and str(err.value).startswith("judgments@v1: judge 'always-a'")
    # the recipe relaxes or turns off the gate
    assert check_thresholds(report, FidelityConfig(enforce=False)) == []
    assert (
        check_thresholds(report, FidelityConfig(min_position_consistency=None, max_first_position_rate=None))
        == []
    )


def test_ties_and_always_b() -> None:
    rows = _scripted(2, "tie") + _scripted(2, "B", judge="always-b")
    bias = position_bias(judgments_table(rows))
    assert bias["always-a"]["ties"] == 4 and bias["always-a"]["first_rate"] is None
    assert bias["always-b"] == {
        "verdicts": 4,
        "first": 0,
        "second": 4,
        "ties": 0,
        "tie_rate": 0.0,
        "n": 4,
        "first_rate": 0.0,
    }
    always_b = _llm(position_bias={"n": 24, "first_rate": 0.0})
    assert check_thresholds(always_b, FidelityConfig()) == [
        "judge 'j' fails a fidelity check: share of verdicts favouring the first position 0.000 < 1 - 0.8 = "
        "evaluation.fidelity.max_first_position_rate 0.8 (over 24 verdicts)"
    ]


def test_defaults_spare_rule_judges_and_tiny_samples_but_set_thresholds_do_not() -> None:
    few = _llm(position_consistency={"pairs": 3, "consistent": 0, "rate": 0.0})
    assert check_thresholds(few, FidelityConfig()) == []  # 3 pairs < min_judged: the defaults say nothing
    assert len(check_thresholds(few, FidelityConfig(min_judged=3))) == 1
    assert len(check_thresholds(few, FidelityConfig(min_position_consistency=0.5))) == 1  # set: checked
    # a verifier whose extraction fails on most rows is not held to the default parse-failure rate
    verifier = {"judges": {"math": {"kind": "verifier", "rows": 40, "parse_failure_rate": 0.75}}}
    assert check_thresholds(verifier, FidelityConfig()) == []
    assert len(check_thresholds(verifier, FidelityConfig(max_parse_failure_rate=0.5))) == 1
    # gold agreement below chance stops a model judge; the calibration accuracy is used when there is one
    gold = _llm(gold_agreement={"n": 30, "rate": 0.4})
    assert (
        "gold agreement 0.400 < evaluation.fidelity.min_gold_agreement 0.5"
        in check_thresholds(gold, FidelityConfig())[0]
    )
    gold["judges"]["j"]["calibration"] = {"pairs": 20, "judged": 20, "accuracy": 0.9}
    assert check_thresholds(gold, FidelityConfig()) == []
    parse = _llm(parse_failure_rate=0.6)
    assert (
        "parse failure rate 0.600 > evaluation.fidelity.max_parse_failure_rate 0.5"
        in check_thresholds(parse, FidelityConfig())[0]
    )


def test_the_gate_is_a_recipe_field_on_by_default() -> None:
    text = "dataset: d\nprompts: {sources: [{kind: arithmetic, n: 2}]}\n"
    text += "evaluation:\n  fidelity: {enforce: false}\n"
    assert parse_recipe(text, base_dir=".").evaluation.fidelity.enforce is False
    default = FidelityConfig()
    assert (
        default.enforce and default.min_position_consistency == 0.5 and default.max_first_position_rate == 0.8
    )
    assert default.max_parse_failure_rate == 0.5 and default.min_gold_agreement == 0.5
