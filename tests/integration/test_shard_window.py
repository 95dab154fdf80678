"""Several shards in flight through one engine (an openai engine on a loopback server that answers
after a fixed delay): small shards give the rows one big shard gives, with the requests of several
shards in flight; a failing request does not stall the window; a build killed mid-window resumes
from the shards it wrote and gets the rows of a clean build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clienv import PREFMILL, cli_env, kill_when
from delay_server import DelayServer

from prefmill.flows import run_build
from prefmill.recipe import load_recipe
from prefmill.storage import Store

pytestmark = pytest.mark.slow

COLUMNS = ["candidate_id", "prompt_id", "sample_index", "response", "error", "n_tokens", "sampling"]


def _recipe(folder: Path, url: str, shard_size: int, *, extra: str = "", name: str = "win") -> Path:
    prompts = [{"prompt": f"Question {i}: say something."} for i in range(24)]
    prompts[13] = {"prompt": "Question 13: FAIL on purpose."}
    (folder / "prompts.jsonl").write_text("\n".join(json.dumps(p) for p in prompts) + "\n")
    path = folder / f"{name}.yaml"
    path.write_text(
        f"dataset: win\nseed: 3\nshard_size: {shard_size}\n{extra}"
        "prompts:\n  sources:\n    - kind: file\n      path: prompts.jsonl\n"
        f"synthesis:\n  engine: openai:m@{url}?max_concurrency=64&max_retries=0\n  k: 2\n"
        "  max_new_tokens: 8\n"
    )
    return path


def _rows(root: Path | str, version: str | None = None) -> list[dict[str, Any]]:
    store = Store(str(root))
    m = (
        store.resolve_version("win", "candidates")
        if version is None
        else store.manifest("win", "candidates", version)
    )
    return store.read_arrow(m, COLUMNS).sort_by("candidate_id").to_pylist()


@pytest.mark.usefixtures("prefect_api")
def test_small_shards_in_flight_together_give_the_rows_of_one_big_shard(tmp_path: Path) -> None:
    with DelayServer(delay=0.2) as server:
        small = run_build(
            load_recipe(_recipe(tmp_path, server.url, 2)), str(tmp_path / "small"), stop_after="synthesis"
        )
        peak_small = server.peak
        server.reset()
        big = run_build(
            load_recipe(_recipe(tmp_path, server.url, 24, name="big")),
            str(tmp_path / "big"),
            stop_after="synthesis",
        )
    cands = next(t for t in small.tables if t.table == "candidates")
    assert cands.in_flight is not None
    _mean, peak, window = cands.in_flight
    assert window == 12  # 2 x 64 requests queued / 4 per shard, capped at the 12 shards
    assert peak_small > 4 and peak > 4  # more than one shard's 4 requests at once
    rows = _rows(tmp_path / "small")
    assert rows == _rows(tmp_path / "big") and len(rows) == 48
    failed = [r for r in rows if r["error"]]  # the failing prompt's two samples, and only those
    assert len(failed) == 2 and all("400" in r["error"] for r in failed)
    assert big.version("candidates") != small.version("candidates")  # shard_size is in the version


def _shards(root: Path) -> list[Path]:
    base = root / "win" / "candidates"
    return sorted(base.glob("*/part-*.parquet")) if base.exists() else []


@pytest.mark.usefixtures("prefect_api")
def test_killed_mid_window_resumes_only_unfinished_shards(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = cli_env(tmp_path, PREFECT_API_URL.value())
    root = tmp_path / "killed"
    with DelayServer(delay=0.5) as server:
        recipe = _recipe(tmp_path, server.url, 2, extra="max_shards_in_flight: 4\n")
        cmd = [*PREFMILL, "build", str(recipe), "--root", str(root), "--stop-after", "synthesis"]
        kill_when(cmd, env, lambda: bool(_shards(root)), timeout=240)
        kept = {p.name: p.stat().st_mtime_ns for p in _shards(root)}
        asked = server.requests
        assert 0 < len(kept) < 12, "the build finished (or wrote nothing) before it was killed"
        assert server.peak > 4  # the window had several shards' requests in flight when killed
        server.reset()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        redone = server.requests
        server.delay = 0.0
        recipe = _recipe(tmp_path, server.url, 2, name="clean")  # the same engine spec
        clean = run_build(load_recipe(recipe), str(tmp_path / "clean"), stop_after="synthesis")
    store = Store(str(root))
    manifest = store.resolve_version("win", "candidates")
    assert manifest.stats["resumed_shards"] == len(kept)
    version_dir = Path(store.version_path("win", "candidates", manifest.version))
    for name, mtime in kept.items():  # finished shards were not generated again
        assert (version_dir / name).stat().st_mtime_ns == mtime
    assert redone == 48 - 4 * len(kept)  # only the unfinished shards' requests were sent again
    assert asked >= 4 * len(kept)
    assert clean.version("candidates") == manifest.version
    assert _rows(root) == _rows(tmp_path / "clean")
