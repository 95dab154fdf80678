"""Every synthesis strategy in one real build: the embedded model, real Prefect, real embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefmill.embeddings import embed
from prefmill.errors import InputError
from prefmill.flows import BuildSummary, run_build
from prefmill.flows.synthesis import synthesis_config
from prefmill.recipe import Recipe, parse_recipe
from prefmill.storage import Store
from prefmill.tasks.evaluation.extract import extract_final_number, numbers_equal
from prefmill.ui import _synthesis_lines

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

OPEN = "Write one sentence about the sea."
RECIPE = """\
dataset: strat
seed: 2
shard_size: 8
prompts:
  sources:
    - {kind: arithmetic, n: 2, seed: 1, max_operand: 9}
    - {kind: file, path: prompts.jsonl}
synthesis:
  k: 2
  temperature: [0.7, 1.0]
  top_p: [0.9, 1.0]
  max_new_tokens: 24
  batch_size: 16
  policies:
    - {name: sample}
    - {name: rs, strategy: best_of_n}
    - {name: vs, strategy: verbalized, k: 1}
  best_of_n: {budget: 3}
  verbalized: {n: 2}
  offline:
    - {path: responses.jsonl, data_policy: "transformers:smollm2"}
  policy_engine: "transformers:smollm2"
  diversity: {near_duplicate_threshold: 0.95}
"""
OFFLINE = [
    {"prompt": OPEN, "response": "The sea is calm and blue today.", "rating": 4},
    {"prompt": OPEN, "response": "The sea is calm and blue today!", "rating": 2},
]


def _write(folder: Path, offline: list[dict]) -> None:
    (folder / "prompts.jsonl").write_text(json.dumps({"prompt": OPEN}) + "\n")
    (folder / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in offline))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, Store, BuildSummary, list[dict]]:
    folder = tmp_path_factory.mktemp("strategies")
    _write(folder, OFFLINE)
    recipe = parse_recipe(RECIPE, base_dir=folder)
    summary = run_build(recipe, str(folder / "data"))
    store = Store(folder / "data")
    rows = store.read_arrow(store.manifest("strat", "candidates", summary.version("candidates"))).to_pylist()
    return recipe, store, summary, rows


def test_policies_and_ladders(built) -> None:
    _, store, _, rows = built
    prompts = store.read("strat", "prompts").to_pylist()
    assert {r["policy"] for r in rows} == {"sample", "rs", "vs", "offline:responses.jsonl"}
    sample = [r for r in rows if r["policy"] == "sample"]
    assert len(sample) == 3 * 2 and all(r["error"] is None and r["logprob"] < 0 for r in sample)
    for r in sample:
        sampling = json.loads(r["sampling"])
        assert (sampling["temperature"], sampling["top_p"]) == [(0.7, 0.9), (1.0, 1.0)][r["sample_index"]]
        # the target policy is the generator here: scoring gives back the generation's log-prob when
        # the sample ended with EOS; a truncated one is scored with an end-of-turn token it never made
        if r["finish_reason"] == "stop":
            assert r["policy_logprob"] == pytest.approx(r["logprob"], abs=0.05)
        else:
            assert r["policy_logprob"] < r["logprob"]
    assert {r["prompt_id"] for r in rows} == {p["prompt_id"] for p in prompts}
    assert len({r["candidate_id"] for r in rows}) == len(rows)


def test_best_of_n_follows_the_verifier(built) -> None:
    _, store, summary, rows = built
    reference = {p["prompt_id"]: p["reference"] for p in store.read("strat", "prompts").to_pylist()}
    rs = [r for r in rows if r["policy"] == "rs"]
    by: dict[str, list[dict]] = {}
    for r in rs:
        by.setdefault(r["prompt_id"], []).append(r)
    assert set(by) == set(reference)
    for pid, group in by.items():
        ref = reference[pid]
        assert [r["sample_index"] for r in group] == list(range(len(group)))
        assert {r["attempts"] for r in group} == {len(group)} and r["strategy"] == "best_of_n"
        if ref is None:
            assert len(group) == 2 and all(r["accepted"] is None for r in group)
            continue
        for r in group:
            got = extract_final_number(r["response"])
            assert r["accepted"] == (got is not None and numbers_equal(got, ref))
        first_round_hit = any(r["accepted"] for r in group[:2])
        assert len(group) == (2 if first_round_hit else 3)  # a second round only without a hit
    stats = store.manifest("strat", "candidates", summary.version("candidates")).stats
    assert stats["best_of_n_verifiable"] == 2 and stats["best_of_n_samples"] == len(rs)


def test_verbalized_rows_are_parsed_or_kept_raw(built) -> None:
    _, _, _, rows = built
    vs = [r for r in rows if r["policy"] == "vs"]
    assert {r["prompt_id"] for r in vs} and all(r["strategy"] == "verbalized" for r in vs)
    for r in vs:
        if r["error"] is None:
            assert r["response"] and r["raw"] is None and 0 <= r["sample_index"] < 2
            assert r["stated_probability"] is None or 0 <= r["stated_probability"] <= 1
        else:
            assert r["response"] is None and r["raw"] and r["sample_index"] == 0
            assert "no <text> block" in r["error"]


def test_offline_rows_reweighting_and_duplicates(built) -> None:
    _, _, _, rows = built
    off = [r for r in rows if r["origin"] == "offline"]
    assert [(r["response"], r["rating"], r["generator"]) for r in off] == [
        (o["response"], float(o["rating"]), "offline:responses.jsonl") for o in OFFLINE
    ]
    for r in off:  # scored under the data policy and the target policy: here the same model
        assert r["logprob"] < 0 and r["policy_logprob"] == pytest.approx(r["logprob"], abs=1e-3)
    assert off[1]["duplicate_of"] is not None
    marked = [r for r in rows if r["duplicate_of"] is not None]
    by_id = {r["candidate_id"]: r for r in rows}
    for r in marked:
        first = by_id[r["duplicate_of"]]
        assert first["prompt_id"] == r["prompt_id"] and first["duplicate_of"] is None
        a, b = embed([first["response"], r["response"]])
        assert float(np.dot(a, b)) >= 0.95


def test_manifest_stats_summary_and_downstream(built) -> None:
    _, store, summary, rows = built
    stats = store.manifest("strat", "candidates", summary.version("candidates")).stats
    assert stats["diversity_prompts"] == 3 and stats["offline_rows"] == 2 and stats["offline_unmatched"] == 0
    assert stats["near_duplicates"] == sum(r["duplicate_of"] is not None for r in rows)
    assert 0 < stats["distinct_2_sum"] <= 3 and 0 <= stats["spread_sum"] <= 6
    lines = _synthesis_lines(summary)
    assert lines[0].startswith("diversity over 3 prompts") and lines[1].startswith("best-of-n:")
    judged = store.read("strat", "judgments").column("candidate_id").to_pylist()
    assert set(judged) == {r["candidate_id"] for r in rows if r["error"] is None}


def test_rerun_cached_and_strategy_settings_version_candidates(built) -> None:
    recipe, store, _, _ = built
    again = run_build(recipe, store.root)
    assert next(t for t in again.tables if t.table == "candidates").cached
    base = synthesis_config(recipe)
    for edit in ("n: 2}", "n: 3}"), ("budget: 3", "budget: 4"), ("0.95}", "0.9}"):
        changed = parse_recipe(RECIPE.replace(*edit), base_dir=recipe.base_dir)
        assert synthesis_config(changed) != base, edit


def test_unmatched_offline_prompt_stops_before_generation(tmp_path: Path) -> None:
    _write(tmp_path, [*OFFLINE, {"prompt": "A prompt nobody asked", "response": "x"}])
    recipe = parse_recipe(RECIPE, base_dir=tmp_path)
    with pytest.raises(InputError, match=r"responses\.jsonl:3: the prompt of this response is not in"):
        run_build(recipe, str(tmp_path / "data"))
    store = Store(tmp_path / "data")
    assert store.versions("strat", "candidates") == []
