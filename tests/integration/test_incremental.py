"""Incremental builds: a second build whose prompt file gained 10 prompts sends only those 10 to the
model; unchanged shards of candidates and judgments are borrowed by reference, lineage names the old
versions, and the rows equal a fresh full build's (log-probs to float noise: ``_assert_close``).
(The old build ends on a shard boundary: a
topped-up partial shard keeps rows generated in a smaller batch, whose text equals a fresh build's
only with a batch-invariant engine; tests/unit/test_incremental_reuse.py covers its selection.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tables_equal import content

from prefmill.engines.registry import loaded_engines
from prefmill.flows import run_build
from prefmill.recipe import parse_recipe
from prefmill.storage import Parent, Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

K = 2
RECIPE = f"""\
dataset: grow
seed: 7
shard_size: 4
prompts:
  sources:
    - kind: file
      path: prompts.jsonl
synthesis:
  k: {K}
  max_new_tokens: 8
"""
TABLES = ("prompts", "candidates", "judgments", "pairs", "points", "lists")


def _served() -> int:
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


def _write_prompts(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"prompt": f"What is {i} + {i * 3}? Answer briefly.", "reference": str(4 * i)} for i in range(n)]
    (folder / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "recipe.yaml").write_text(RECIPE)


def test_new_prompts_only_go_to_the_model(tmp_path: Path) -> None:
    grow, root = tmp_path / "grow", str(tmp_path / "data")
    _write_prompts(grow, 8)  # shards: [4 prompts] [4 prompts]
    first = run_build(parse_recipe(RECIPE, base_dir=grow), root)
    store = Store(root)
    old_c = store.manifest("grow", "candidates", first.version("candidates"))
    old_j = store.manifest("grow", "judgments", first.version("judgments"))

    _write_prompts(grow, 18)  # the source gained 10 prompts: shards [4] [4] [4] [4] [2]
    served = _served()
    second = run_build(parse_recipe(RECIPE, base_dir=grow), root)
    assert _served() - served == 10 * K  # model calls for the 10 new prompts only

    new_c = store.manifest("grow", "candidates", second.version("candidates"))
    assert new_c.rows == 18 * K
    assert [f.version for f in new_c.files] == [old_c.version] * 2 + [None] * 3  # shards 0-1 by reference
    assert store.file_paths(new_c)[0] == store.file_paths(old_c)[0]
    assert Parent("candidates", old_c.version) in new_c.parents
    assert Parent("prompts", second.version("prompts")) in new_c.parents
    new_j = store.manifest("grow", "judgments", second.version("judgments"))
    assert new_j.files[0].version == old_j.version and Parent("judgments", old_j.version) in new_j.parents

    _write_prompts(tmp_path / "fresh", 18)  # the same 18 prompts, built from scratch elsewhere
    fresh_root = str(tmp_path / "fresh-data")
    fresh = run_build(parse_recipe(RECIPE, base_dir=tmp_path / "fresh"), fresh_root)
    for table in TABLES:
        assert second.version(table) == fresh.version(table), table
        got = content(store, "grow", table, second.version(table))
        want = content(Store(fresh_root), "grow", table, fresh.version(table))
        _assert_close(got, want, table)


def _assert_close(got: list[dict], want: list[dict], table: str) -> None:
    """The same rows, floats to float noise: the in-process engine batches fixed groups of shards,
    and the new shards shared a batch with each other, the fresh build's with the old ones too, so
    log-probs (and what is computed from them: implicit margins) agree only to ~1e-5; texts, ids,
    tokens and everything else are the same."""
    assert len(got) == len(want), table
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys(), table
        for key, value in g.items():
            if isinstance(value, float) and isinstance(w[key], float):
                assert math.isclose(value, w[key], rel_tol=1e-4, abs_tol=1e-6), (table, key)
            else:
                assert value == w[key], (table, key)
