"""Kill a real `prefmill build` process mid-stage, re-run it, and get the rows an uninterrupted
build gets: finished shards are kept (not redone), no partial version is ever readable."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clienv import PREFMILL, cli_env

from prefmill.flows import run_build
from prefmill.recipe import load_recipe
from prefmill.storage import Store

pytestmark = pytest.mark.slow

RECIPE = """\
dataset: resume
seed: 7
shard_size: 2
prompts:
  sources:
    - kind: arithmetic
      n: 6
      seed: 3
synthesis:
  k: 2
  temperature: 0.9
  max_new_tokens: 32
  batch_size: 4
"""


def _candidate_dirs(root: Path) -> list[Path]:
    base = root / "resume" / "candidates"
    return [d for d in base.iterdir() if d.is_dir()] if base.exists() else []


def _wait_for_first_shard(root: Path, proc: subprocess.Popen[str], timeout: float = 240) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in _candidate_dirs(root):
            # the first shard written, whichever it is: with groups of shards in flight at once,
            # shard 0's group need not be the first to reach the engine
            if any(d.glob("part-*.parquet")):
                return d
        if proc.poll() is not None:
            raise AssertionError(f"build ended (rc={proc.returncode}) before a shard was written")
        time.sleep(0.05)
    raise AssertionError("no candidates shard appeared in time")


@pytest.mark.usefixtures("prefect_api")
def test_killed_build_resumes_from_finished_shards(tmp_path: Path) -> None:
    recipe_path = tmp_path / "resume.yaml"
    recipe_path.write_text(RECIPE)
    root = tmp_path / "killed"
    cmd = [*PREFMILL, "build", str(recipe_path), "--root", str(root)]
    from prefect.settings import PREFECT_API_URL

    # the session's Prefect API (the prefect_api fixture): the two CLI builds skip starting their own
    env = cli_env(tmp_path, PREFECT_API_URL.value())

    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        version_dir = _wait_for_first_shard(root, proc)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: the build and its Prefect API
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (version_dir / "_manifest.json").exists(), "the build finished before it could be killed"
    store = Store(root)
    assert store.versions("resume", "candidates") == []  # no readable version
    assert version_dir.name in store.incomplete_versions("resume", "candidates")
    kept = {p.name: p.stat().st_mtime_ns for p in version_dir.glob("part-*.parquet")}
    assert kept

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = store.resolve_version("resume", "candidates")
    assert manifest.version == version_dir.name
    assert manifest.stats["resumed_shards"] == len(kept)
    for name, mtime in kept.items():  # finished shards were not generated again
        assert (version_dir / name).stat().st_mtime_ns == mtime
    assert len(manifest.files) == 3 and manifest.rows == 12

    # an uninterrupted build of the same recipe elsewhere gives the same rows
    fresh = run_build(load_recipe(recipe_path), str(tmp_path / "fresh"))
    assert fresh.version("candidates") == manifest.version
    columns = ["candidate_id", "prompt_id", "sample_index", "response", "n_tokens", "finish_reason"]
    resumed = store.read_arrow(manifest, columns).sort_by("candidate_id").to_pylist()
    clean = Store(tmp_path / "fresh").read("resume", "candidates").select(columns).sort_by("candidate_id")
    assert resumed == clean.to_pylist()
    assert store.read_ref("resume").tables["pairs"] == fresh.version("pairs")
