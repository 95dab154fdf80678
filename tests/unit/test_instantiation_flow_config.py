"""The instantiation flow's version configs (what enters each output's version) and manifest stats."""

from __future__ import annotations

import pyarrow as pa

from prefmill.flows.instantiation import output_config, output_stats
from prefmill.recipe import parse_recipe

BASE = "dataset: d\nprompts: {sources: [{kind: arithmetic, n: 2}]}\n"


def configs(extra: str = "") -> dict[str, dict]:
    recipe = parse_recipe(BASE + extra)
    return {out: output_config(recipe, out)[0] for out in ("pairs", "points", "lists")}


def test_each_output_keeps_only_the_parameters_its_sql_uses() -> None:
    base = configs()
    assert set(base["pairs"]["params"]) == {
        "strategies",
        "seed",
        "diversity_quantile",
        "tau",
        "weight_clip",
        "min_margin",
        "min_implicit_margin",
        "min_spread",
        "max_spread",
        "drop_swap_inconsistent",
        "min_entropy",
        "max_entropy",
        "aggregation",  # how scores.sql combines judges (evaluation.aggregation): every output
    }
    assert set(base["points"]["params"]) == {
        "label_rule",
        "label_threshold",
        "label_quantile",
        "min_spread",
        "max_spread",
        "aggregation",
    }
    assert base["lists"]["params"] == {"aggregation": "mean"}
    # a selection filter changes pairs only; the spread band changes pairs and points
    entropy = configs("instantiation: {selection: {max_entropy: 0.9}}\n")
    assert entropy["pairs"] != base["pairs"] and entropy["points"] == base["points"]
    assert entropy["lists"] == base["lists"]
    spread = configs("instantiation: {selection: {max_spread: 0.2}}\n")
    assert spread["pairs"] != base["pairs"] and spread["points"] != base["points"]
    # criterion weights change every output (a new criterion appears in each)
    weighted = configs("instantiation: {criterion_weights: {a: 1.0, b: 2.0}}\n")
    assert all(weighted[o] != base[o] for o in base)
    assert weighted["lists"]["params"] == {"criterion_weights": {"a": 1.0, "b": 2.0}, "aggregation": "mean"}
    # the embedding model is part of diverse pairs' version
    diverse = configs("instantiation: {pair_strategies: [diverse]}\n")
    assert diverse["pairs"]["embedding_model"].startswith("all-MiniLM-L6-v2")
    assert "embedding_model" not in base["pairs"]


def test_custom_selection_sql_changes_the_pairs_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from prefmill.sql import read_sql

    (tmp_path / "sel.sql").write_text(read_sql("selection").replace("'explicit_margin'", "'too_close'"))
    recipe = parse_recipe(BASE + "instantiation: {sql: {selection: sel.sql}}\n", base_dir=tmp_path)
    config, _ = output_config(recipe, "pairs")
    assert config["custom_selection_sql"] is True
    assert config["sql_sha256"] != configs()["pairs"]["sql_sha256"]


def test_output_stats() -> None:
    points = pa.table(
        {
            "prompt_id": ["p1", "p1", "p2", "p2"],
            "label": [True, False, True, True],
            "criterion": ["overall"] * 4,
        }
    )
    stats = output_stats("points", points, {"quantile_middle": 2})
    assert stats == {
        "rows_before_selection": 6,
        "removed": {"quantile_middle": 2},
        "prompts": 2,
        "criteria": {"overall": 4},
        "desirable": 3,
        "undesirable": 1,
        "desirable_ratio": 3.0,
    }
    lists = pa.table({"prompt_id": ["p1", "p2"], "criterion": ["c", "c"], "zero_variance": [True, False]})
    assert output_stats("lists", lists)["zero_variance_groups"] == 1
    assert output_stats("pairs", pa.table({"prompt_id": pa.array([], pa.string())}), {}) == {
        "rows_before_selection": 0,
        "removed": {},
    }
