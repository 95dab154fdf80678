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
