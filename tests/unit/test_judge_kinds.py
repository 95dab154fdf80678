"""The judge-kind and prompt-source-kind registries: everything built from the kind modules agrees
with them (recipe union, loader sections, docs sections, templates, fingerprints, gold, engines)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from prefmill.errors import PrefmillError
from prefmill.recipe import JUDGE_MODELS, parse_recipe, reference_markdown
from prefmill.recipe.loading import _SECTIONS, _TAGS
from prefmill.tasks.evaluation import templates
from prefmill.tasks.evaluation.judges import registry
from prefmill.tasks.prompts.arithmetic import arithmetic_problems
from prefmill.tasks.prompts.sources.registry import SOURCE_MODELS, load_source

#: A folder whose config.json describes a two-label token-classification model (what `prm` checks).
_PRM_STUB = tempfile.mkdtemp(prefix="prm-stub-")
Path(_PRM_STUB, "config.json").write_text(
    json.dumps({"architectures": ["LlamaForTokenClassification"], "id2label": {"0": "wrong", "1": "correct"}})
)

#: Required fields of the kinds that have some, to build a config of every kind.
_REQUIRED = {
    "reward_model": {"model": "rm"},
    "human": {"path": "h.jsonl"},
    "format": {"regex": "x"},
    "step_consensus": {"judges": ["a", "b"]},
    "atomic": {"judge": {"kind": "format", "regex": "x"}},
    "prm": {"model": _PRM_STUB},
    "step_outcome": {"judge": "mc"},
}


def _config(kind: str):
    return registry.judge_kind(kind).config(kind=kind, **_REQUIRED.get(kind, {}))


def test_the_kinds_are_the_modules_and_each_declares_its_own_tag() -> None:
    assert list(registry.KINDS) == [
        "arithmetic", "heuristic", "math", "code", "format", "reward_model", "human", "llm", "meta",
        "critique_revise", "rollout", "rollout_search", "step_llm", "step_consensus", "atomic", "prm",
        "step_outcome",
    ]  # fmt: skip
    for name, kind in registry.KINDS.items():
        assert kind.name == name and kind.config.__module__.endswith(f".judges.{name}")
    assert {name: kind.config for name, kind in registry.KINDS.items()} == JUDGE_MODELS


def test_the_recipe_union_loader_and_docs_know_every_kind() -> None:
    docs = reference_markdown()
    for name, model in JUDGE_MODELS.items():
        assert _SECTIONS[("evaluation", "judges", name)] is model
        assert name in _TAGS
        assert f"## `evaluation.judges[] with kind: {name}`" in docs
    for name, model in SOURCE_MODELS.items():
        assert _SECTIONS[("prompts", "sources", name)] is model
        assert f"## `prompts.sources[] with kind: {name}`" in docs
    judges = [{"kind": k, **_REQUIRED.get(k, {})} for k in JUDGE_MODELS]
    head = "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 1}]\nevaluation:\n  judges: "
    recipe = parse_recipe(head + json.dumps(judges))
    assert recipe.evaluation.judge_kinds == list(JUDGE_MODELS)


def test_builtin_templates_are_the_declared_ones_and_all_ship() -> None:
    declared = {t for kind in registry.KINDS.values() for t in kind.traits.templates}
    assert set(templates.BUILTIN) == declared
    for name in declared:
        assert templates.load_template(name).origin == f"builtin:{name}"


def test_every_kind_has_a_fingerprint_or_none_and_unknown_kinds_are_named() -> None:
    for name, kind in registry.KINDS.items():
        fp = registry.fingerprint(_config(name))
        assert (fp is None) == (kind.fingerprint is None)
        if fp is not None:
            assert "parser" in fp and all(len(fp[f]) == 64 for f in kind.traits.template_fields)
    with pytest.raises(PrefmillError, match="unknown judge 'nope': known judges are arithmetic"):
        registry.judge_kind("nope")


def test_gold_engines_and_template_paths_come_from_traits() -> None:
    assert {"verifier", "human"} == registry.GOLD_ROW_KINDS
    assert {"heuristic"} == registry.NOT_GOLD_NAMES
    configs = [_config(k) for k in JUDGE_MODELS]
    dumps = [c.model_dump(mode="json") for c in configs]
    expected = {
        "llm-point:transformers:smollm2": "transformers:smollm2",
        "meta-judge": "transformers:smollm2",
        "rollout:transformers:smollm2": "transformers:smollm2",
        "rollout_search:transformers:smollm2": "transformers:smollm2",
        "step-llm:transformers:smollm2": "transformers:smollm2",
    }
    assert registry.judge_engines(configs) == registry.judge_engines(dumps) == expected
    revise = registry.resolve_paths(
        _config("critique_revise").model_copy(update={"revise_template": "r.j2"}), "/x"
    )
    assert revise.revise_template == "/x/r.j2" and revise.critique_template is None


def test_prompt_sources_load_through_their_kind() -> None:
    source = SOURCE_MODELS["arithmetic"](kind="arithmetic", n=3, seed=1)
    prompts, rejected = load_source(source, lambda p: p)  # type: ignore[arg-type,return-value]
    assert prompts.equals(arithmetic_problems(3, 1)) and rejected.num_columns == 0
