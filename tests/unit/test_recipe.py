"""Recipe validation: good recipes load; each kind of mistake names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefmill.errors import RecipeError
from prefmill.recipe import (
    ArithmeticSource,
    FileSource,
    load_recipe,
    parse_recipe,
    reference_markdown,
)

GOOD = """\
dataset: demo
seed: 3
prompts:
  sources:
    - kind: arithmetic
      n: 5
    - kind: file
      path: prompts.jsonl
synthesis:
  k: 2
  temperature: [0.5, 1.0]
instantiation:
  outputs: [pairs]
  min_margin: 0.1
"""


def _error(text: str) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(text, name="r.yaml")
    return str(info.value)


def test_good_recipe_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(GOOD)
    recipe = load_recipe(path)
    assert recipe.dataset == "demo" and recipe.seed == 3
    assert isinstance(recipe.prompts.sources[0], ArithmeticSource)
    assert isinstance(recipe.prompts.sources[1], FileSource)
    assert recipe.synthesis.temperatures == [0.5, 1.0]
    assert recipe.synthesis.engine == "transformers:smollm2"
    assert recipe.evaluation.judge_kinds == ["arithmetic", "heuristic"]
    assert recipe.instantiation.outputs == ["pairs"]
    # relative paths resolve against the recipe's folder, not the working directory
    assert recipe.resolve_path("prompts.jsonl") == tmp_path / "prompts.jsonl"
    assert recipe.storage_root("/elsewhere") == "/elsewhere"


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"recipe file not found: .*nope\.yaml"):
        load_recipe(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line() -> None:
    message = _error("dataset: demo\nprompts:\n  sources: [\n")
    assert message.startswith("r.yaml line 4")
    assert "not valid YAML" in message


def test_unknown_field_names_line_field_and_allowed() -> None:
    message = _error(GOOD + "synthesis_extra: 1\n")
    assert message.startswith("r.yaml line 15: synthesis_extra: unknown field")
    assert "allowed: dataset, root" in message
    nested = _error(GOOD.replace("  k: 2", "  kk: 2"))
    assert nested.startswith("r.yaml line 10: synthesis.kk: unknown field (allowed: engine, k,")


def test_wrong_type_names_line_field_and_value() -> None:
    message = _error(GOOD.replace("  k: 2", "  k: two"))
    assert message.startswith("r.yaml line 10: synthesis.k:")
    assert "valid integer" in message and "'two'" in message


def test_missing_required_field_inside_a_list() -> None:
    message = _error("dataset: d\nprompts:\n  sources:\n    - kind: file\n")
    assert message == "r.yaml line 4: prompts.sources[0].path: required field is missing"


def test_dataset_name_with_path_parts_is_refused() -> None:
    for bad in ("../up", "a/b", ".hidden"):
        message = _error(GOOD.replace("dataset: demo", f"dataset: '{bad}'"))
        assert message.startswith("r.yaml line 1: dataset:") and "not allowed" in message


def test_out_of_range_values() -> None:
    assert "greater than or equal to 1" in _error(GOOD.replace("  k: 2", "  k: 0"))
    assert "between 0 and 5" in _error(GOOD.replace("[0.5, 1.0]", "[0.5, 9]"))


def test_empty_and_non_mapping_recipes() -> None:
    assert "empty" in _error("")
    assert "mapping" in _error("- a\n- b\n")


def test_several_errors_are_all_reported_on_one_line() -> None:
    message = _error(GOOD.replace("  k: 2", "  k: two").replace("seed: 3", "seed: x"))
    assert "\n" not in message
    assert "seed" in message and "synthesis.k" in message and "and 1 more" in message


def test_reference_docs_cover_every_field() -> None:
    text = reference_markdown()
    for name in ("shard_size", "max_new_tokens", "label_threshold", "messages_field", "max_operand"):
        assert f"`{name}`" in text
    assert "base_dir" not in text


def test_docs_recipe_md_is_up_to_date() -> None:
    docs = Path(__file__).parents[2] / "docs" / "recipe.md"
    assert docs.read_text().strip() == reference_markdown().strip(), (
        "docs/recipe.md is stale: run `python -m prefmill.recipe > docs/recipe.md`"
    )


def test_judges_bare_names_are_short_for_kind_mappings() -> None:
    text = _MINIMAL_JUDGES + "    - arithmetic\n    - kind: heuristic\n"
    recipe = parse_recipe(text)
    assert recipe.evaluation.judge_kinds == ["arithmetic", "heuristic"]
    assert (
        recipe.evaluation.judges[0]
        == parse_recipe(_MINIMAL_JUDGES + "    - kind: arithmetic\n").evaluation.judges[0]
    )


def test_unknown_judge_kind_and_option_name_the_line() -> None:
    with pytest.raises(
        RecipeError, match=r"line 8: evaluation\.judges\[0\]: .*'nope'.*'arithmetic', 'heuristic'"
    ):
        parse_recipe(_MINIMAL_JUDGES + "    - nope\n")
    with pytest.raises(RecipeError, match=r"line 9: evaluation\.judges\[0\]\.bogus: unknown field"):
        parse_recipe(_MINIMAL_JUDGES + "    - kind: arithmetic\n      bogus: 1\n")


_MINIMAL_JUDGES = (
    "dataset: d\nprompts:\n  sources:\n    - kind: arithmetic\n      n: 3\nevaluation:\n  judges:\n"
)


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("dataset: a\nprompts: {sources: [{kind: arithmetic, n: 2}]}\ndataset: b\n", "dataset", (1, 3)),
        (
            "dataset: a\nprompts:\n  sources:\n    - kind: arithmetic\n      n: 2\n      n: 3\n",
            "n",
            (5, 6),
        ),
        ("dataset: a\nprompts: {sources: [{kind: arithmetic, n: 2}], sources: []}\n", "sources", (2, 2)),
    ],
)
def test_duplicate_keys_are_refused_with_both_lines(text: str, key: str, lines: tuple[int, int]) -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe(text, name="r.yaml")
    first, second = lines
    assert str(err.value) == (
        f"r.yaml line {second}: field '{key}' is written twice (lines {first} and {second}); keep one of them"
    )
