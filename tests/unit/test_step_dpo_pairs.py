"""The `step_dpo` pair strategy (prefmill/sql/pairs.sql) on hand-made steps and step labels."""

from __future__ import annotations

import pyarrow as pa
import pytest
from test_instantiation_sql import cand, connect, judg, prompt

from prefmill.errors import RecipeError
from prefmill.recipe import parse_recipe
from prefmill.tasks.instantiation import instantiate
from prefmill.tasks.instantiation.run import bind_steps
from prefmill.tasks.steps.config import StepsConfig
from prefmill.tasks.steps.segment import steps_table

#: p: "a" and "b" share step 1 and fork at step 2 (a right, b wrong); "c" goes wrong at step 1;
#: "d" shares both steps with "a" (no fork); q: "e" right, "f" wrong at step 1 but unlabelled step 2.
RESPONSES = {
    "a": ("p", "2*3 = 6\n6+1 = 7\nanswer 7"),
    "b": ("p", "2*3 = 6\n6+1 = 8\nanswer 8"),
    "c": ("p", "2*3 = 5\n5+1 = 6\nanswer 6"),
    "d": ("p", "2*3 = 6\n6+1 = 7\nso 7"),
    "e": ("q", "1+1 = 2"),
    "f": ("q", "1+1 = 3\nanswer 3"),
}
LABELS = {"a": [1, 1, 1], "b": [1, 0, 0], "c": [0, 0, 0], "d": [1, 1, 1], "e": [1], "f": [0]}


def _step(cid: str, i: int, score: float, judge: str = "mc") -> dict:
    row = judg(RESPONSES[cid][0], cid, score, judge=judge, granularity="step")
    return {**row, "judgment_id": f"{judge}-{cid}-{i}", "unit_index": i, "raw": f'{{"hard": {score}}}'}


def _pairs(judgments: list[dict]) -> list[dict]:
    cands = [cand(cid, pid, text) for cid, (pid, text) in RESPONSES.items()]
    con = connect([prompt("p", "what is 2*3+1?"), prompt("q")], cands, judgments)
    steps, _ = steps_table(pa.Table.from_pylist(cands), StepsConfig(segmenter="lines"))
    bind_steps(con, steps)
    return instantiate(con, "pairs", {"strategies": ["step_dpo"]}).to_pylist()


def test_step_dpo_pairs_fork_after_a_shared_correct_prefix() -> None:
    rows = _pairs([_step(c, i, float(v)) for c, labels in LABELS.items() for i, v in enumerate(labels)])
    got = {(r["chosen_id"], r["rejected_id"]): r for r in rows}
    # a/d beat b at step 2 (shared correct step 1); a/b/d beat c at step 1 (empty prefix); f's
    # second step has no label, so f is not in any pair
    assert set(got) == {("a", "b"), ("d", "b"), ("a", "c"), ("b", "c"), ("d", "c")}
    ab = got[("a", "b")]
    assert (ab["chosen"], ab["rejected"]) == ("2*3 = 6\n6+1 = 7", "2*3 = 6\n6+1 = 8")
    assert (got[("b", "c")]["chosen"], got[("b", "c")]["rejected"]) == ("2*3 = 6", "2*3 = 5")
    assert ab["prompt"] == "what is 2*3+1?" and ab["strategy"] == "step_dpo" and ab["criterion"] == "step"
    assert (ab["chosen_score"], ab["rejected_score"], ab["margin"], ab["weight"]) == (1.0, 0.0, 1.0, 1.0)


def test_consensus_rows_decide_and_other_strategies_ignore_steps() -> None:
    rows = [_step(c, i, float(v)) for c, labels in LABELS.items() for i, v in enumerate(labels)]
    # the consensus judge kept only b's and c's labels: b (correct step 1) beats c (wrong step 1)
    kept = [{**_step(c, i, float(v), judge="step-consensus")} for c in "bc" for i, v in enumerate(LABELS[c])]
    assert {(r["chosen_id"], r["rejected_id"]) for r in _pairs(rows + kept)} == {("b", "c")}
    cands = [cand(cid, pid, text) for cid, (pid, text) in RESPONSES.items()]
    con = connect([prompt("p"), prompt("q")], cands, [*rows, judg("p", "a", 1.0), judg("p", "c", 0.0)])
    pairs = instantiate(con, "pairs", {}).to_pylist()  # best_vs_worst only: the step rows play no part
    assert [(r["chosen_id"], r["rejected_id"], r["strategy"]) for r in pairs] == [("a", "c", "best_vs_worst")]


def test_step_dpo_without_steps_is_one_line_before_any_work() -> None:
    text = (
        "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 1}]\n"
        "instantiation:\n  pair_strategies: [step_dpo]\n"
    )
    from prefmill.flows.plans.instantiation import plan_instantiation

    with pytest.raises(
        RecipeError, match=r"^instantiation\.pair_strategies: step_dpo pairs need step labels"
    ):
        plan_instantiation(parse_recipe(text))
