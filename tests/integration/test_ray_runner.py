"""`task_runner: ray`: the shards of a small real build run on a local Ray instance capped at two
CPUs (two single-threaded workers) and a small object store (prefect-ray's RayTaskRunner); the
tables are the same rows as the in-process build, the model ran in the Ray workers (not the flow's
process), and their task runs were recorded by the flow's Prefect API."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_builds import build_matches_local_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def test_ray_build_matches_local_build(tmp_path: Path) -> None:
    import ray

    build_matches_local_build(tmp_path, str(tmp_path / "ray"), "ray", workers=2)
    assert not ray.is_initialized()  # the build shut down the instance it started
