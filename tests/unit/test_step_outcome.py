"""Judge kind `step_outcome`: outcome scores from a step judge's labels, by a stated rule."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_rollout_judges import SHARD, Continuer

from prefmill.errors import PrefmillError
from prefmill.recipe import parse_recipe
from prefmill.tasks.evaluation.judges.rollout_search import RolloutSearchJudge
from prefmill.tasks.evaluation.judges.step_outcome import StepOutcomeJudge
from prefmill.tasks.evaluation.rollouts import binary_search, solutions, step_judgments
from prefmill.tasks.evaluation.step_judge import step_outcome
from prefmill.tasks.steps.config import StepsConfig


def _labels() -> pa.Table:
    config = RolloutSearchJudge(
        kind="rollout_search", n=1, verifier="arithmetic", segmenter=StepsConfig(), name="bs"
    )
    sols = solutions(config, SHARD)
    binary_search(config, Continuer(), sols)
    return step_judgments(config, sols, soft=False)


#: "wrong": 8 steps, the 4th wrong (3 of 8 correct); "last": 4 steps, only the answer wrong
@pytest.mark.parametrize(
    ("rule", "wrong", "last"),
    [("min", 0.0, 0.0), ("mean", 3 / 8, 0.75), ("share", 3 / 8, 0.75), ("first_error", 3 / 8, 0.75)],
)
def test_each_rule_gives_one_outcome_row_per_whole_chain(rule: str, wrong: float, last: float) -> None:
    labels = _labels()
    config = StepOutcomeJudge(kind="step_outcome", judge="bs", rule=rule, segmenter=StepsConfig())
    rows = step_outcome(config, SHARD, labels).to_pylist()
    got = {r["candidate_id"]: r["score"] for r in rows}
    assert got["wrong"] == pytest.approx(wrong) and got["right"] == 1.0 and got["last"] == last
    assert {(r["granularity"], r["judge"], r["mode"]) for r in rows} == {("outcome", "step-outcome", "point")}
    # a chain missing its last step's label gets no outcome; another judge's rows are not read
    cut = labels.filter(pc.invert(pc.and_(pc.equal(labels.column("candidate_id"), "right"),
                                          pc.equal(labels.column("unit_index"), 4))))  # fmt: skip
    assert "right" not in {r["candidate_id"] for r in step_outcome(config, SHARD, cut).to_pylist()}
    other = config.model_copy(update={"judge": "nobody"})
    assert step_outcome(other, SHARD, labels).num_rows == 0


def test_a_recipe_gives_it_the_steps_segmenter_or_names_the_missing_section() -> None:
    from prefmill.flows.plans.evaluation import judge_configs

    head = "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 1}]\n"
    judges = (
        "evaluation:\n  judges: [{kind: rollout, name: mc}, {kind: step_outcome, judge: mc, rule: share}]\n"
    )
    recipe = parse_recipe(head + "steps: {segmenter: lines}\n" + judges)
    assert judge_configs(recipe)[1].segmenter == recipe.steps
    with pytest.raises(PrefmillError, match=r"evaluation\.judges\[0\] \(rollout\): step labels need steps"):
        judge_configs(parse_recipe(head + judges))
