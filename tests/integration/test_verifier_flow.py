"""Verifiers and imported human verdicts in a real build: real Prefect flows, the embedded model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefmill.errors import InputError
from prefmill.flows import run_build
from prefmill.recipe import load_recipe
from prefmill.storage import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

PROMPTS = [
    {"prompt": "What is 2 + 3? Answer with a number.", "reference": "5"},
    {
        "prompt": "Write a Python function add(a, b) that returns the sum.",
        "reference": json.dumps({"tests": ["assert add(2, 3) == 5", "assert add(0, 0) == 0"]}),
    },
    {"prompt": "Say hello in one word."},
]
RECIPE = """
dataset: verify
shard_size: 2
prompts:
  sources:
    - {kind: file, path: prompts.jsonl}
synthesis:
  k: 2
  max_new_tokens: 12
evaluation:
  aggregation: median
  judges:
    - math
    - {kind: code, timeout_s: 5}
    - {kind: format, max_words: 5, name: short}
"""
HUMAN = "    - {kind: human, path: verdicts.jsonl}\n"


def test_verifiers_and_human_verdicts_in_a_build(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text("\n".join(json.dumps(p) for p in PROMPTS) + "\n")
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    root = str(tmp_path / "data")
    first = run_build(load_recipe(tmp_path / "recipe.yaml"), root, stop_after="synthesis")
    store = Store(root)
    candidates = store.read_arrow(
        store.manifest("verify", "candidates", first.version("candidates"))
    ).to_pylist()
    assert len(candidates) == 6
    ids = sorted(c["candidate_id"] for c in candidates)
    same_prompt = [c["candidate_id"] for c in candidates if c["prompt_id"] == candidates[0]["prompt_id"]]

    verdicts = tmp_path / "verdicts.jsonl"
    rows = [
        {"annotator": "ann", "candidate_id": ids[0], "score": 1},
        {
            "annotator": "ann",
            "candidate_id": same_prompt[0],
            "other_candidate_id": same_prompt[1],
            "prefers_first": 0,
        },
    ]
    verdicts.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "recipe.yaml").write_text(RECIPE + HUMAN)
    recipe = load_recipe(tmp_path / "recipe.yaml")
    summary = run_build(recipe, root)
    assert next(t for t in summary.tables if t.table == "candidates").cached

    manifest = store.manifest("verify", "judgments", summary.version("judgments"))
    assert len(manifest.files) == 2 + 1  # two shards of candidates (2 + 1 prompts), then the human shard
    judgments = store.read_arrow(manifest).to_pylist()
    by_judge: dict[str, list[dict]] = {}
    for j in judgments:
        by_judge.setdefault(j["judge"], []).append(j)
    assert sorted(by_judge) == ["code-verifier", "human:ann", "math-verifier", "short"]
    assert len(by_judge["math-verifier"]) == 2 and len(by_judge["code-verifier"]) == 2
    assert len(by_judge["short"]) == 6
    for j in by_judge["code-verifier"]:
        assert j["rationale"].startswith(("no Python code found", "0/2 ", "1/2 ", "2/2 "))
        assert j["kind"] == "verifier" and 0.0 <= j["score"] <= 1.0
    for j in by_judge["math-verifier"]:
        assert j["rationale"].endswith(("correct", "wrong", "no number found in the response"))
    human = sorted(by_judge["human:ann"], key=lambda j: j["mode"])
    assert [(j["kind"], j["mode"], j["candidate_id"]) for j in human] == [
        ("human", "pair", same_prompt[0]),
        ("human", "point", ids[0]),
    ]
    assert manifest.config["human_files"] and manifest.config["judges"][-1]["kind"] == "human"

    points = store.read_arrow(store.manifest("verify", "points", summary.version("points")))
    assert points.num_rows == 6
    assert (
        store.manifest("verify", "points", summary.version("points")).config["params"]["aggregation"]
        == "median"
    )

    # the same recipe again: everything cached; new verdicts: a new judgments version
    again = run_build(recipe, root)
    assert all(t.cached for t in again.tables)
    verdicts.write_text(json.dumps({"annotator": "bob", "candidate_id": ids[1], "score": 0}) + "\n")
    changed = run_build(recipe, root)
    assert changed.version("judgments") != summary.version("judgments")
    assert next(t for t in changed.tables if t.table == "candidates").cached

    # a verdict on an unknown candidate stops the build; no judgments version is published
    verdicts.write_text(json.dumps({"annotator": "bob", "candidate_id": "nope", "score": 0}) + "\n")
    with pytest.raises(InputError, match=r"verdicts\.jsonl line 1: candidate_id 'nope' is not a candidate"):
        run_build(recipe, root)
    published = {m.version for m in store.versions("verify", "judgments")}
    assert published == {summary.version("judgments"), changed.version("judgments")}
