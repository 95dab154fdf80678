"""The recipe's price table for openai engines: validation and how it reaches the engine."""

from __future__ import annotations

import pytest

from prefmill.engines.registry import price_options
from prefmill.errors import RecipeError
from prefmill.recipe import parse_recipe, reference_markdown

BASE = """\
dataset: demo
prompts:
  sources:
    - kind: arithmetic
      n: 2
synthesis:
  engine: openai:gpt-4o-mini@https://api.example/v1
"""


def test_prices_parse_and_reach_the_engine_options() -> None:
    recipe = parse_recipe(BASE + "prices:\n  gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.6}\n")
    assert recipe.prices["gpt-4o-mini"].input_per_mtok == 0.15
    assert price_options(recipe.synthesis.engine, recipe.prices) == {
        "input_per_mtok": 0.15,
        "output_per_mtok": 0.6,
    }
    assert parse_recipe(BASE).prices == {}


def test_a_bad_price_names_the_line_and_field() -> None:
    text = BASE + "prices:\n  gpt-4o-mini:\n    input_per_mtok: -1\n    output_per_mtok: 0.6\n"
    with pytest.raises(RecipeError) as err:
        parse_recipe(text, name="r.yaml")
    assert "r.yaml line 10: prices.gpt-4o-mini.input_per_mtok" in str(err.value)
    with pytest.raises(RecipeError, match="output_per_mtok: required field is missing"):
        parse_recipe(BASE + "prices:\n  gpt-4o-mini: {input_per_mtok: 1}\n")


def test_prices_are_in_the_reference() -> None:
    doc = reference_markdown()
    assert "## `prices.<model>`" in doc and "`input_per_mtok`" in doc


JUDGE_ONLY = BASE.replace("openai:gpt-4o-mini@https://api.example/v1", "scripted:echo") + (
    "evaluation:\n  judges:\n    - kind: llm\n      engine: openai:judge-m@http://127.0.0.1:9/v1\n"
)


def test_judge_engines_get_the_recipe_prices_and_count_in_the_cost_line() -> None:
    from prefmill.engines.registry import clear_engines, get_engine, priced
    from prefmill.flows.plans.evaluation import plan_evaluation
    from prefmill.flows.results import pricing

    recipe = parse_recipe(JUDGE_ONLY + "prices:\n  judge-m: {input_per_mtok: 1.0, output_per_mtok: 2.0}\n")
    plan = plan_evaluation(recipe)
    assert plan.prices == {"judge-m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    assert "prices" not in plan.config  # cost, not rows: the judgments version does not move
    assert plan.config == plan_evaluation(parse_recipe(JUDGE_ONLY)).config
    clear_engines()
    try:
        with priced(plan.prices):  # what the evaluation shard sets around its judges
            engine = get_engine(recipe.evaluation.judges[0].engine)
        assert engine.cost(1_000_000, 1_000_000) == pytest.approx(3.0)
        assert get_engine(recipe.evaluation.judges[0].engine).cost(1, 1) is None  # no table: unpriced
    finally:
        clear_engines()
    # the summary's cost line knows the build has an API engine even when synthesis is local
    assert pricing(recipe) == (True, [])
    assert pricing(parse_recipe(JUDGE_ONLY)) == (True, ["judge-m"])
