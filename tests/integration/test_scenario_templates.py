"""A scenario template end to end: `prefmill init resource-constrained` then `prefmill build` as a
user would (offline responses, heuristic judge: no model), giving reference-free pairs for SimPO.
Every template's `prefmill check` is a unit test (tests/unit/test_check.py); every scenario template
runs end to end with the model swapped for the scripted engine in test_every_template.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefmill.cli import run
from prefmill.storage import Store

pytestmark = pytest.mark.slow


def test_resource_constrained_template_builds(tmp_path: Path, prefect_api: None) -> None:
    assert run(["init", "resource-constrained", "--dir", str(tmp_path)]) == 0
    recipe = tmp_path / "resource-constrained.yaml"
    assert (tmp_path / "resource-constrained-responses.jsonl").is_file()
    root = str(tmp_path / "data")
    assert run(["build", str(recipe), "--root", root]) == 0
    store = Store(root)
    pairs = store.read("resource-constrained", "pairs").to_pylist()
    assert len(pairs) >= 8  # most of the 12 prompts have a clear best and worst response
    candidates = store.read("resource-constrained", "candidates").to_pylist()
    assert len(candidates) == 36 and {c["origin"] for c in candidates} == {"offline"}
    assert all(c["rating"] is not None for c in candidates)  # the writers' ratings are kept
