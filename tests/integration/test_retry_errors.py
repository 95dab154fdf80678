"""`--retry-errors`: a finished candidates version with failed rows is never silently reused as a
success; a retry re-generates only the failed rows (same seeds, same text), borrows the untouched
shards by reference, and supersedes the old version in later builds."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from prefmill.engines.registry import loaded_engines
from prefmill.flows import run_build
from prefmill.flows.synthesis import STAGE, synthesis_config
from prefmill.recipe import parse_recipe
from prefmill.storage import Parent, Store, version_id
from prefmill.tasks.synthesis import SYNTHESIS_CODE_VERSION

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

RECIPE = """\
dataset: retry
seed: 11
shard_size: 2
prompts:
  sources:
    - kind: arithmetic
      n: 4
      seed: 5
synthesis:
  k: 2
  max_new_tokens: 24
  batch_size: 4
"""


def _served() -> int:
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


def test_retry_errors_regenerates_only_failed_rows(tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=tmp_path)
    clean = run_build(recipe, str(tmp_path / "clean"))
    clean_store = Store(tmp_path / "clean")
    reference = clean_store.read("retry", "candidates")

    # the same build elsewhere, where two rows of shard 0 failed (as after an engine outage)
    root = tmp_path / "flaky"
    store = Store(root)
    prompts = run_build(recipe, str(root), stop_after="prompts")
    parents = [Parent("prompts", prompts.version("prompts"))]
    vid = version_id("candidates", STAGE, SYNTHESIS_CODE_VERSION, synthesis_config(recipe), parents)
    assert vid == clean.version("candidates")
    clean_m = clean_store.manifest("retry", "candidates", vid)
    parts = [pq.read_table(path) for path in clean_store.file_paths(clean_m)]
    broken = parts[0].to_pylist()
    for row in broken[:2]:
        row.update(response=None, error="HTTP 503: engine unavailable", n_tokens=0, finish_reason=None)
    writer = store.open_version("retry", "candidates", vid)
    writer.write_shard(0, pa.Table.from_pylist(broken, schema=reference.schema))
    writer.write_shard(1, parts[1])
    failed = writer.publish(
        stage=STAGE, code_version=SYNTHESIS_CODE_VERSION, config=synthesis_config(recipe), parents=parents
    )
    assert failed.totals["errors"] == 2

    served = _served()
    reused = run_build(recipe, str(root))  # without the flag the failed version is what it is
    assert reused.version("candidates") == vid and _served() == served
    assert next(t for t in reused.tables if t.table == "candidates").totals["errors"] == 2

    retried = run_build(recipe, str(root), retry_errors=True)
    assert _served() - served == 2  # only the failed rows went to the model
    new = store.manifest("retry", "candidates", retried.version("candidates"))
    assert new.version != vid and new.config["retry_of"] == vid
    assert new.totals["errors"] == 0 and new.stats["retried"] == 2
    assert [f.version for f in new.files] == [None, vid]  # shard 1 borrowed by reference
    assert Parent("candidates", vid) in new.parents
    got = store.read_arrow(new).sort_by("candidate_id")
    want = reference.sort_by("candidate_id")
    for column in ("candidate_id", "response", "n_tokens", "finish_reason"):
        assert got.column(column).to_pylist() == want.column(column).to_pylist()  # same seeds, same text
    assert store.read_ref("retry").tables["candidates"] == new.version
    judged = store.read("retry", "judgments")
    assert pc.count_distinct(judged.column("candidate_id")).as_py() == 8

    again = run_build(recipe, str(root))  # the retry supersedes the failed version
    assert again.version("candidates") == new.version and _served() - served == 2
    assert all(t.cached for t in again.tables)
