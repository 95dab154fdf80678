"""The steps stage in a real build (offline responses, no model): written before evaluation, cached,
versioned by its segmenter, and a limit breach stops the build before anything is published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefmill.errors import InputError
from prefmill.flows import run_build
from prefmill.flows.fastpath import unchanged_build
from prefmill.recipe import load_recipe
from prefmill.storage import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

ROWS = [
    {"prompt": "What is 3 + 4, times 2?", "response": "Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14\nAnswer: 14"},
    {"prompt": "What is 3 + 4, times 2?", "response": "3 + 4 = 7. So 7 * 2 = 15.", "model": "b"},
    {"prompt": "Say hi.", "response": "Hi!"},
]
RECIPE = """
dataset: st
shard_size: 1
prompts:
  sources: [{kind: file, path: prompts.jsonl}]
synthesis:
  online: false
  offline: [{path: responses.jsonl}]
steps: {segmenter: SEGMENTER, max_steps: 3}
evaluation:
  judges: [heuristic]
"""


def test_the_steps_stage_writes_caches_and_versions_steps(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in dict.fromkeys(r["prompt"] for r in ROWS))
    )
    (tmp_path / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("SEGMENTER", "lines"))
    root = str(tmp_path / "data")
    first = run_build(load_recipe(recipe), root, stop_after="evaluation")
    store = Store(root)
    version = first.version("steps")
    man = store.manifest("st", "steps", version)
    assert len(man.files) == 2  # one shard per candidates part file
    assert [p.table for p in man.parents] == ["candidates"]
    judgments = store.manifest("st", "judgments", first.version("judgments"))
    assert ("steps", version) in [(p.table, p.version) for p in judgments.parents]
    steps = store.read_arrow(man).to_pylist()
    by_cand: dict[str, list[str]] = {}
    for s in sorted(steps, key=lambda s: (s["candidate_id"], s["step_index"])):
        by_cand.setdefault(s["candidate_id"], []).append(s["text"])
    assert sorted(by_cand.values()) == [
        ["3 + 4 = 7. So 7 * 2 = 15."],
        ["Hi!"],
        ["Step 1: 3 + 4 = 7", "Step 2: 7 * 2 = 14", "Answer: 14"],
    ]
    again = run_build(load_recipe(recipe), root, stop_after="evaluation")
    assert again.version("steps") == version
    assert next(t for t in again.tables if t.table == "steps").cached
    # the unchanged rerun's fast path finds the steps version and the judgments made from it
    fast = unchanged_build(load_recipe(recipe), root, stop_after="evaluation", ref="fast")
    assert fast is not None
    assert [(t.table, t.version) for t in fast.tables] == [(t.table, t.version) for t in first.tables]
    recipe.write_text(RECIPE.replace("SEGMENTER", "sentences"))
    sentences = run_build(load_recipe(recipe), root, stop_after="evaluation")
    assert sentences.version("steps") != version
    assert sentences.version("candidates") == first.version("candidates")
    rows = store.read_arrow(store.manifest("st", "steps", sentences.version("steps"))).to_pylist()
    assert len(rows) == 3 + 2 + 1
    recipe.write_text(RECIPE.replace("SEGMENTER", "lines").replace("max_steps: 3", "max_steps: 2"))
    with pytest.raises(InputError, match=r"steps\.max_steps: candidate \w+ has 3 steps"):
        run_build(load_recipe(recipe), root, stop_after="evaluation")
    assert len(store.versions("st", "steps")) == 2  # nothing published for the failed segmentation
