"""Fidelity statistics against hand-computed values: kappas, Spearman, swap consistency, length
control, gold agreement, self-preference and the thresholds that fail a build."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from prefmill.recipe import FidelityConfig
from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.fidelity import (
    FidelityError,
    cohen_kappa,
    enforce,
    family,
    fidelity_report,
    fleiss_kappa,
    gold_agreement,
    length_control,
    length_controlled,
    pair_labels,
    position_consistency,
    spearman,
    swap_pairs,
)
from prefmill.tasks.evaluation.llm_judge import judgments_table

LN2 = math.log(2)


def point(
    judge: str,
    cid: str,
    score: float | None,
    *,
    prompt: str = "p",
    kind: str = "llm",
    criterion: str = "overall",
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "judge": judge,
        "kind": kind,
        "mode": "point",
        "prompt_id": prompt,
        "candidate_id": cid,
        "criterion": criterion,
        "score": score,
        "parse_error": error,
    }


def pair(
    judge: str, a: str, b: str, order: str, p: float | None, *, prompt: str = "p", error: str | None = None
) -> dict[str, Any]:
    """A pair row in prefmill's convention, from P(a better than b): in order 'ab' a is shown first
    (candidate_id = a), in order 'ba' b is (candidate_id = b, prefers_first = 1 - p)."""
    first, second, pf = (a, b, p) if order == "ab" else (b, a, None if p is None else 1.0 - p)
    return {
        "judge": judge,
        "kind": "llm",
        "mode": "pair",
        "prompt_id": prompt,
        "candidate_id": first,
        "other_candidate_id": second,
        "criterion": "overall",
        "order": order,
        "prefers_first": pf,
        "parse_error": error,
    }


def cands(lengths: dict[str, int], generators: dict[str, str] | None = None) -> pa.Table:
    ids = list(lengths)
    return pa.table(
        {
            "candidate_id": ids,
            "response": ["x" * lengths[c] for c in ids],
            "n_tokens": pa.array([lengths[c] for c in ids], pa.int64()),
            "generator": [(generators or {}).get(c, "transformers:smollm2") for c in ids],
        }
    )


def test_cohen_kappa_hand_computed() -> None:
    a = [1, 1, -1, -1, 1, 0]
    b = [1, -1, -1, -1, 1, 0]
    # po = 5/6, pe = (2*3 + 1*1 + 3*2) / 36 = 13/36, kappa = (30 - 13) / (36 - 13) = 17/23
    assert cohen_kappa(a, b) == pytest.approx(17 / 23)
    assert cohen_kappa([1, 1], [1, 1]) == 1.0
    assert cohen_kappa([], []) is None


def test_fleiss_kappa_wikipedia_example() -> None:
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-5)
    assert fleiss_kappa(np.array([[2, 0], [1, 1]])) is not None
    assert fleiss_kappa(np.array([[2, 0], [1, 2]])) is None  # unequal raters per item


def test_spearman_with_ties_hand_computed() -> None:
    # ranks y = 1, 2, 3.5, 5, 3.5; cov 8, var 10 and 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2], [1, 2]) is None


def _swap_table() -> pa.Table:
    return judgments_table(
        [
            pair("P", "a", "b", "ab", 0.8),
            pair("P", "a", "b", "ba", 0.7),  # consistent
            pair("P", "a", "c", "ab", 0.8),
            pair("P", "a", "c", "ba", 0.2),  # inconsistent
            pair("P", "b", "c", "ab", 0.5),
            pair("P", "b", "c", "ba", 0.5),  # tie both ways: consistent
            pair("P", "a", "d", "ab", 0.9),  # one order only: not counted
            pair("P", "b", "d", "ab", 0.9),
            pair("P", "b", "d", "ba", None, error="no verdict"),
        ]
    )


def test_position_consistency_and_swap_pairs() -> None:
    table = _swap_table()
    assert position_consistency(table) == {"P": {"pairs": 3, "consistent": 2, "rate": round(2 / 3, 6)}}
    both = swap_pairs(table)
    assert both.select("candidate_id", "other_candidate_id", "consistent").rows() == [
        ("a", "b", True),
        ("a", "c", False),
        ("b", "c", True),
    ]


def test_pair_labels_and_gold_agreement() -> None:
    rows = _swap_table().to_pylist()
    gold = judgments_table(
        [
            point("V", "a", 1.0, kind="verifier"),
            point("V", "b", 0.0, kind="verifier"),
            point("V", "c", 0.0, kind="verifier"),
            point("heuristic", "a", 0.1, kind="verifier"),
            point("heuristic", "b", 0.9, kind="verifier"),
        ]
    )
    table = pa.concat_tables([pa.Table.from_pylist(rows, schema=gold.schema), gold])
    labels = pair_labels(table)
    p = {(r["a"], r["b"]): r["label"] for r in labels.filter(pl.col("judge") == "P").iter_rows(named=True)}
    assert p == {("a", "b"): 1, ("a", "c"): 0, ("b", "c"): 0, ("a", "d"): 1, ("b", "d"): 1}
    v = {(r["a"], r["b"]): r["label"] for r in labels.filter(pl.col("judge") == "V").iter_rows(named=True)}
    assert v == {("a", "b"): 1, ("a", "c"): 1, ("b", "c"): 0}
    # gold decides (a,b) and (a,c); P agrees on (a,b), ties (a,c): (1 + 0.5) / 2. The heuristic is
    # not gold, and is itself scored against V: it prefers b over a, wrong: 0 / 1.
    agreement = gold_agreement(labels)
    assert agreement["P"] == {
        "n": 2,
        "rate": 0.75,
        "gold": ["V"],
        "both_orders": {"n": 2, "rate": 0.75},  # (a,b) and (a,c) were parsed in both orders
        "single_order": {"n": 0, "rate": None},
    }
    assert agreement["heuristic"]["rate"] == 0.0
    assert gold_agreement(labels, gold=["heuristic"])["V"]["rate"] == 0.0


def test_length_control_point_scores() -> None:
    # prompt p: ln L = 0, ln 2, ln 4, centred -ln2, 0, ln2; scores .2 .5 .8 -> beta = 0.3 / ln 2 and
    # every controlled score is 0.5. Prompt q: equal lengths, no length signal.
    table = judgments_table(
        [
            point("J", "a", 0.2),
            point("J", "b", 0.5),
            point("J", "c", 0.8),
            point("J", "d", 0.9, prompt="q"),
            point("J", "e", 0.1, prompt="q"),
            point("J", "z", None, error="unparseable"),
        ]
    )
    lengths = cands({"a": 1, "b": 2, "c": 4, "d": 8, "e": 8, "z": 3})
    lc = length_controlled(table, lengths).sort("judgment_id")
    assert lc.height == 5
    assert lc.get_column("coef").to_list() == pytest.approx([0.3 / LN2] * 5)
    by_value = dict(zip(lc.get_column("value").to_list(), lc.get_column("value_lc").to_list(), strict=True))
    assert by_value[0.2] == pytest.approx(0.5) and by_value[0.8] == pytest.approx(0.5)
    assert by_value[0.9] == pytest.approx(0.9) and by_value[0.1] == pytest.approx(0.1)
    report = length_control(table, lengths)["J"]["overall"]
    assert report["n"] == 5 and report["coef"] == pytest.approx(0.3 / LN2, abs=1e-6)
    assert report["spearman_raw"] == pytest.approx(spearman([0.2, 0.5, 0.8, 0.9, 0.1], [-LN2, 0, LN2, 0, 0]))
    assert abs(report["spearman_lc"]) < abs(report["spearman_raw"])


def test_length_control_pair_preferences() -> None:
    # diffs +ln4 and -ln4: sd ln4, d = +-tanh(1); gamma = 0.3 / tanh(1); both controlled to 0.6
    table = judgments_table([pair("P", "a", "b", "ab", 0.9), pair("P", "c", "d", "ab", 0.3)])
    lc = length_controlled(table, cands({"a": 4, "b": 1, "c": 1, "d": 4}))
    assert lc.get_column("coef").to_list() == pytest.approx([0.3 / math.tanh(1)] * 2)
    assert lc.get_column("value_lc").to_list() == pytest.approx([0.6, 0.6])


def test_family_names() -> None:
    assert family("transformers:smollm2") == "smollm"
    assert family("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm"
    assert family("openai:Qwen2.5-7B-Instruct@http://localhost:8000/v1") == "qwen"
    assert family("vllm:/models/llama-3-8b") == "llama"
    assert family(None) is None


def test_report_self_preference_agreement_and_thresholds() -> None:
    table = judgments_table(
        [
            point("J", "a", 0.9),
            point("J", "b", 0.3),
            point("J", "c", 0.5),
            point("K", "a", 0.2),
            point("K", "b", 0.4),
            point("K", "c", 0.6, error=None),
            point("K", "d", None, error="no score"),
            *_swap_table().to_pylist(),
        ]
    )
    lengths = cands(
        {"a": 3, "b": 5, "c": 7, "d": 9}, {"b": "openai:gpt-4o@http://x", "c": "openai:gpt-4o@http://x"}
    )
    report = fidelity_report(
        table, lengths, judge_engines={"J": "transformers:smollm2", "P": "openai:gpt-4o@u"}
    )
    judges = report["judges"]
    assert judges["K"]["parse_failures"] == 1 and judges["K"]["parse_failure_rate"] == 0.25
    assert judges["P"]["position_consistency"]["rate"] == round(2 / 3, 6)
    sp = judges["J"]["self_preference"]
    assert sp["family"] == "smollm" and sp["mean_own"] == 0.9 and sp["mean_other"] == pytest.approx(0.4)
    assert any("'J'" in w and "smollm" in w for w in report["warnings"])
    jk = next(p for p in report["agreement"]["pairs"] if p["judges"] == ["J", "K"])
    # J orders a > c > b, K orders c > b > a: pairs (a,b) (a,c) (b,c) -> J: +1 +1 -1, K: -1 -1 -1
    assert jk["n"] == 3 and jk["cohen_kappa"] == pytest.approx(cohen_kappa([1, 1, -1], [-1, -1, -1]))
    assert jk["spearman"] == pytest.approx(-0.5)
    assert report["agreement"]["fleiss_kappa"]["judges"] == ["J", "K", "P"]

    enforce(report, FidelityConfig(min_position_consistency=0.6), "judgments@v")
    with pytest.raises(FidelityError) as err:
        enforce(
            report, FidelityConfig(min_position_consistency=0.8, max_parse_failure_rate=0.2), "judgments@v"
        )
    msg = str(err.value)
    assert (
        "judge 'P' too inconsistent: position consistency 0.667 < "
        "evaluation.fidelity.min_position_consistency 0.8" in msg
    )
    assert (
        "judge 'K' fails a fidelity check: parse failure rate 0.250 > "
        "evaluation.fidelity.max_parse_failure_rate 0.2" in msg
    )


def test_report_finds_the_usable_rows_once_and_reports_as_each_check_alone(monkeypatch: Any) -> None:
    from prefmill.tasks.evaluation import fidelity, fidelity_length, fidelity_position, fidelity_tables

    table = judgments_table(
        [
            point("J", "a", 0.9),
            point("J", "b", 0.3),
            point("K", "a", None, error="x"),
            *_swap_table().to_pylist(),
        ]
    )
    lengths = cands({"a": 3, "b": 5, "c": 7})
    alone = {
        "bias": fidelity.position_bias(table),
        "length": length_control(table, lengths),
        "labels": pair_labels(table),
        "self": fidelity.self_preference(table, lengths, {"J": "transformers:smollm2"}),
        "agreement": fidelity.agreement(pair_labels(table), table),
    }
    calls: list[int] = []

    def counted(judgments: Any) -> pl.DataFrame:
        calls.append(1)
        return fidelity_tables.usable(judgments)

    for module in (fidelity, fidelity_length, fidelity_position):
        monkeypatch.setattr(module, "usable", counted)
    report = fidelity_report(table, lengths, judge_engines={"J": "transformers:smollm2"})
    assert len(calls) == 1
    assert report["judges"]["P"]["position_bias"] == alone["bias"]["P"]
    assert report["judges"]["J"]["length"] == alone["length"]["J"]
    assert report["judges"]["J"]["self_preference"] == alone["self"][0]["J"]
    assert report["agreement"] == alone["agreement"]


def test_empty_report() -> None:
    report = fidelity_report(empty_table("judgments"), cands({}))
    assert report == {"judges": {}, "agreement": {"pairs": []}, "warnings": []}
