"""The report's honest figures: a pair judge's length correlation does not depend on which response
a row lists first; a 0/1 verifier is not "length-controlled" into a negative correlation; gold
agreement apart over pairs parsed in both orders and in one order."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
from test_fidelity import cands, pair, point

from prefmill.tasks.evaluation.fidelity import gold_agreement, length_control, length_controlled, pair_labels
from prefmill.tasks.evaluation.llm_judge import judgments_table

# six single-order pairs (x_i, y_i); y_i is the longer one, by more as i grows; the judge mostly
# prefers it. Per row, Spearman(prefers_first, length difference) ranged from -0.14 to 0.78 with the
# listing order of these very verdicts.
LENGTHS = {**{f"x{i}": 10 for i in range(6)}, **{f"y{i}": 10 + 4 * (i + 1) for i in range(6)}}
P_Y = [0.9, 0.3, 0.7, 0.4, 0.8, 0.6]  # P(y_i better)


def _rows(y_first: set[int]) -> list[dict]:
    """The same verdicts, row i listing y_i first when i is in ``y_first`` (order 'ab' either way)."""
    rows = []
    for i, p in enumerate(P_Y):
        x, y = f"x{i}", f"y{i}"
        rows.append(
            pair("P", y, x, "ab", p, prompt=f"p{i}")
            if i in y_first
            else pair("P", x, y, "ab", 1 - p, prompt=f"p{i}")
        )
    return rows


def test_pair_length_correlation_does_not_depend_on_which_response_a_row_lists_first() -> None:
    lens = cands(LENGTHS)
    reports = [
        length_control(judgments_table(_rows(first)), lens)["P"]["overall"]
        for first in (set(), {0, 2, 4}, {1, 3}, set(range(6)))
    ]
    assert reports[0] == reports[1] == reports[2] == reports[3]
    assert reports[0]["spearman_raw"] > 0.3  # it mostly prefers the longer response: a positive figure


def test_a_pass_fail_verifier_is_not_length_controlled() -> None:
    # the correct answers happen to be the longer ones: a real positive correlation, nothing to control
    rows = [point("V", f"c{i}", float(i >= 3), kind="verifier", prompt=f"p{i % 2}") for i in range(6)]
    lens = cands({f"c{i}": 5 + i for i in range(6)})
    report = length_control(judgments_table(rows), lens)["V"]["overall"]
    assert report["controlled"] is False and report["coef"] is None and report["spearman_lc"] is None
    assert report["spearman_raw"] > 0.5
    lc = length_controlled(judgments_table(rows), lens)
    assert lc.get_column("value_lc").to_list() == lc.get_column("value").to_list()
    # a model judge with graded scores is still controlled
    graded = [point("J", f"c{i}", 0.1 * i, prompt=f"p{i % 2}") for i in range(6)]
    assert length_control(judgments_table(graded), lens)["J"]["overall"]["controlled"] is True


def test_gold_agreement_swap_debiased_and_single_order_apart() -> None:
    rows = [
        pair("P", "a", "b", "ab", 0.9),
        pair("P", "a", "b", "ba", 0.8),  # both orders, right (a is gold-better)
        pair("P", "a", "c", "ab", 0.2),  # one order only, wrong
        point("V", "a", 1.0, kind="verifier"),
        point("V", "b", 0.0, kind="verifier"),
        point("V", "c", 0.0, kind="verifier"),
    ]
    labels = pair_labels(
        pa.Table.from_pylist(judgments_table(rows).to_pylist(), schema=judgments_table(rows).schema)
    )
    orders = {
        (r["a"], r["b"]): r["orders"] for r in labels.filter(pl.col("judge") == "P").iter_rows(named=True)
    }
    assert orders == {("a", "b"): 2, ("a", "c"): 1}
    gold = gold_agreement(labels)["P"]
    assert gold["n"] == 2 and gold["rate"] == 0.5
    assert gold["both_orders"] == {"n": 1, "rate": 1.0} and gold["single_order"] == {"n": 1, "rate": 0.0}
