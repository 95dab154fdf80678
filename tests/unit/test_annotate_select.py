"""Active selection (annotate/select.py) and human agreement (tasks/evaluation/human_agreement.py):
pure functions on hand-made frames."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from prefmill.annotate.select import (
    MAX_UNCERTAINTY,
    candidate_pairs,
    judge_preferences,
    pair_uncertainty,
    select_pairs,
)
from prefmill.errors import InputError
from prefmill.tasks.evaluation.human import human_judgments
from prefmill.tasks.evaluation.human_agreement import human_agreement


def _j(judge: str, mode: str, pid: str, a: str, b: str | None = None, **kw: object) -> dict:
    row = {
        "judge": judge,
        "kind": kw.pop("kind", "llm"),
        "mode": mode,
        "prompt_id": pid,
        "candidate_id": a,
        "other_candidate_id": b,
        "criterion": "overall",
        "score": None,
        "prefers_first": None,
        "parse_error": None,
    }
    row.update(kw)
    return row


CANDS = pl.DataFrame(
    {
        "candidate_id": ["a1", "a2", "a3", "b1", "b2", "bx"],
        "prompt_id": ["pa", "pa", "pa", "pb", "pb", "pb"],
        "response": ["x", "y", "z", "u", "v", None],
        "error": [None, None, None, None, None, "failed"],
    }
)


def test_candidate_pairs_skip_failed_and_order_ids() -> None:
    pairs = candidate_pairs(CANDS)
    assert pairs.rows() == [("pa", "a1", "a2"), ("pa", "a1", "a3"), ("pa", "a2", "a3"), ("pb", "b1", "b2")]


def test_uncertainty_terms() -> None:
    rows = [
        # pa: two point judges that agree a1 >> a2 (certain), disagree on a3
        _j("p1", "point", "pa", "a1", score=1.0),
        _j("p1", "point", "pa", "a2", score=0.0),
        _j("p1", "point", "pa", "a3", score=1.0),
        _j("p2", "point", "pa", "a1", score=1.0),
        _j("p2", "point", "pa", "a2", score=0.0),
        _j("p2", "point", "pa", "a3", score=0.0),
        # pb: a pair judge that always prefers the first position (swap-inconsistent)
        _j("pj", "pair", "pb", "b1", "b2", order="ab", prefers_first=1.0),
        _j("pj", "pair", "pb", "b2", "b1", order="ba", prefers_first=1.0),
        # a human verdict and an unparsed row are not evidence for selection
        _j("human:x", "pair", "pa", "a1", "a3", kind="human", prefers_first=1.0),
        _j("p1", "point", "pb", "b1", score=None, parse_error="bad"),
    ]
    df = pl.DataFrame(rows)
    prefs = judge_preferences(df)
    assert "human:x" not in prefs["judge"].to_list()
    pj = prefs.filter(pl.col("judge") == "pj").row(0, named=True)
    assert pj["p"] == pytest.approx(0.5) and pj["swap"] == pytest.approx(1.0)
    u = {(r["a"], r["b"]): r for r in pair_uncertainty(df, CANDS).iter_rows(named=True)}
    certain = u[("a1", "a2")]  # both: a1 one score deviation (1 / 0.471) above a2
    assert certain["p"] == pytest.approx(1 / (1 + math.exp(-1.7 / math.sqrt(2 / 9))))
    assert certain["spread"] == pytest.approx(0.0) and certain["margin"] > 0.9 and certain["entropy"] < 0.2
    split = u[("a2", "a3")]  # p1: a3 better (p = 1 - certain p), p2: a tie (p = .5)
    assert split["p"] == pytest.approx((1 - certain["p"] + 0.5) / 2)
    assert split["spread"] == pytest.approx((0.5 - (1 - certain["p"])) / 2)
    swapped = u[("b1", "b2")]
    assert swapped["swap"] == pytest.approx(1.0) and swapped["entropy"] == pytest.approx(1.0)
    assert swapped["uncertainty"] == pytest.approx(1.0 + 1.0 + 0.0 + 0.25)
    assert certain["uncertainty"] < split["uncertainty"] < swapped["uncertainty"]


def test_unjudged_pairs_are_most_uncertain() -> None:
    u = pair_uncertainty(pl.DataFrame([_j("p1", "point", "pa", "a1", score=1.0)]), CANDS)
    assert set(u["uncertainty"].to_list()) == {MAX_UNCERTAINTY} and u["n_judges"].to_list() == [0, 0, 0, 0]


def _scored(n_prompts: int, per: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "prompt_id": f"p{p}",
                "a": f"a{i}",
                "b": f"b{i}",
                "uncertainty": (3.0 if p == 0 else 1.0) - i / 100,
            }
            for p in range(n_prompts)
            for i in range(per)
        ]
    )


def test_diversity_spreads_the_budget_over_prompts() -> None:
    scored = _scored(4, 5)  # prompt p0 is the most uncertain on every pair
    greedy = select_pairs(scored, 5, diversity=1.0)
    assert greedy["prompt_id"].to_list() == ["p0"] * 5  # no diversity: one prompt takes the budget
    diverse = select_pairs(scored, 5, diversity=0.3)
    picked = diverse["prompt_id"].to_list()  # p0: 3, .9; p1-p3: 1 each -> p0 first, then every prompt
    assert picked[0] == "p0" and picked[4] == "p0" and sorted(picked[1:4]) == ["p1", "p2", "p3"]
    assert diverse["rank"].to_list() == list(range(5))


def test_random_is_seeded_and_budgeted() -> None:
    scored = _scored(3, 4)
    one, two = select_pairs(scored, 6, "random", seed=1), select_pairs(scored, 6, "random", seed=1)
    assert one.equals(two) and one.height == 6
    assert not one.equals(select_pairs(scored, 6, "random", seed=2))
    assert select_pairs(scored, None, "random").height == 12
    with pytest.raises(ValueError, match="unknown selection"):
        select_pairs(scored, 1, "best")  # type: ignore[arg-type]


def _labels(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """(judge, item, label) -> pair_labels rows; judges named human:* are annotators."""
    return pl.DataFrame(
        [
            {
                "judge": judge,
                "kind": "human" if judge.startswith("human:") else "llm",
                "prompt_id": "p",
                "a": item,
                "b": "z",
                "criterion": "overall",
                "label": label,
            }
            for judge, item, label in rows
        ]
    )


def test_human_agreement_kappas_and_judges_vs_humans() -> None:
    items = ["i1", "i2", "i3", "i4"]
    ann = [1, -1, 1, -1]
    bob = [1, -1, 1, 1]  # disagrees on i4
    judge = [1, 1, 1, -1]
    rows = [("human:ann", i, v) for i, v in zip(items, ann, strict=True)]
    rows += [("human:bob", i, v) for i, v in zip(items, bob, strict=True)]
    rows += [("llm", i, v) for i, v in zip(items, judge, strict=True)]
    out = human_agreement(_labels(rows))
    assert out is not None and out["annotators"] == ["human:ann", "human:bob"]
    pair = out["pairs"][0]
    assert pair["n"] == 4 and pair["agreement"] == pytest.approx(0.75)
    assert pair["cohen_kappa"] == pytest.approx(0.5)  # po .75, pe .5
    assert out["fleiss_kappa"]["raters"] == 2 and out["fleiss_kappa"]["n"] == 4
    # majority: i1 +1, i2 -1, i3 +1, i4 tie (0) -> judge agrees, disagrees, agrees, half
    vs = out["judges_vs_humans"]["llm"]
    assert vs["n"] == 4 and vs["agreement"] == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert human_agreement(_labels([("llm", "i1", 1)])) is None


def test_human_import_keeps_order_and_seconds(tmp_path: Path) -> None:
    """The import format the app publishes through: ``order`` lands in the column, ``seconds`` in raw."""
    cands = pa.table({"candidate_id": ["a1", "a2"], "prompt_id": ["pa", "pa"]})
    row = {"annotator": "ann", "candidate_id": "a1", "other_candidate_id": "a2", "prefers_first": 1}
    path = tmp_path / "v.jsonl"
    path.write_text(json.dumps(row | {"order": "ba", "seconds": 3.5}) + "\n")
    out = human_judgments(path, None, cands).to_pylist()[0]
    assert out["order"] == "ba" and json.loads(out["raw"])["seconds"] == 3.5
    path.write_text(json.dumps(row | {"order": "up"}) + "\n")
    with pytest.raises(InputError, match="line 1: order 'up' must be 'ab' or 'ba'"):
        human_judgments(path, None, cands)
    path.write_text(json.dumps(row | {"seconds": -1}) + "\n")
    with pytest.raises(InputError, match="line 1: seconds -1"):
        human_judgments(path, None, cands)
