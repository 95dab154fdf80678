"""Two processes writing and publishing the same table version at the same moment (spawned processes:
an integration test, not a unit one). The first publisher wins; the other gets the winner's manifest."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from tables import build

from prefmill.errors import StorageError
from prefmill.storage import Manifest, Store
from prefmill.storage.manifest import MANIFEST_NAME

DS = "ds"


RACE_ROWS, RACE_SHARDS = 30, 3


def _race_worker(root: str, reps: int, barrier: Any, results: Any, who: int) -> None:
    """Runs in a spawned process: write every shard of the same version, then publish."""
    store = Store(root)
    data = build("candidates", RACE_ROWS, errors=2)
    step = RACE_ROWS // RACE_SHARDS
    for rep in range(reps):
        writer = store.open_version(DS, "candidates", f"race{rep:02d}")
        barrier.wait()
        late = False
        for i in range(RACE_SHARDS):
            try:
                writer.write_shard(i, data.slice(i * step, step), stats={"calls": 1})
            except StorageError:
                if not writer.published:
                    raise
                late = True  # the other process published first: nothing more to write
                break
        if rep % 2 == 0:
            barrier.wait()  # both have written every shard: publish at the same moment
        m = writer.publish(
            stage="synthesize", code_version="1", config={}, flow_run_id=f"proc-{who}", expected_shards=3
        )
        results.put((who, rep, late, m.to_json()))


def test_two_processes_publishing_same_version(tmp_path: Path) -> None:
    root, reps = str(tmp_path / "store"), 4
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2, timeout=60)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(root, reps, barrier, results, who)) for who in (0, 1)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in range(2 * reps)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    store = Store(root)
    data = build("candidates", RACE_ROWS, errors=2)
    for rep in range(reps):
        vid = f"race{rep:02d}"
        on_disk = store.manifest(DS, "candidates", vid)
        returned = [Manifest.from_json(text) for who, r, late, text in got if r == rep]
        assert len(returned) == 2
        assert returned[0] == returned[1] == on_disk  # the loser got the winner's manifest back
        assert on_disk.flow_run_id in {"proc-0", "proc-1"}
        assert [f.path for f in on_disk.files] == [f"part-{i:05d}.parquet" for i in range(RACE_SHARDS)]
        assert on_disk.rows == RACE_ROWS and on_disk.totals["errors"] == 2
        assert on_disk.stats == {"calls": RACE_SHARDS}
        assert store.read_arrow(on_disk).equals(data)
        vdir = tmp_path / "store" / DS / "candidates" / vid
        assert sorted(p.name for p in vdir.iterdir() if not p.name.endswith(".stats.json")) == [
            MANIFEST_NAME,
            *[f"part-{i:05d}.parquet" for i in range(RACE_SHARDS)],
        ]
        with pytest.raises(StorageError, match="is published"):
            store.open_version(DS, "candidates", vid).write_shard(0, data)
    assert store.incomplete_versions(DS, "candidates") == []
