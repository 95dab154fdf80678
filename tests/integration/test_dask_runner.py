"""`task_runner: dask`: the shards of a small real build run on a local Dask cluster of two worker
processes (Prefect's DaskTaskRunner), writing into an S3 root on a loopback server; the tables are the
same rows as the in-process build, the model ran in the workers (not the flow's process), and the
workers' task runs were recorded by the flow's Prefect API."""

from __future__ import annotations

from pathlib import Path

import pytest
from runner_builds import build_matches_local_build, recipe

from prefmill.errors import RunnerError
from prefmill.flows import run_build
from s3server import S3Server, s3_server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]


def test_dask_build_matches_local_build(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    root = f"s3://{s3_server.new_bucket()}/prefmill"
    build_matches_local_build(tmp_path, root, "dask", workers=2)


def test_task_runner_errors_are_clear(tmp_path: Path) -> None:
    parsed = recipe(tmp_path)
    with pytest.raises(RunnerError, match="unknown: use one of local, dask, ray"):
        run_build(parsed, str(tmp_path / "a"), task_runner="spark")
    with pytest.raises(RunnerError, match=r"cannot see the local root .* object storage"):
        run_build(parsed, str(tmp_path / "a"), task_runner="dask", runner_address="tcp://10.0.0.1:8786")
    assert not (tmp_path / "a").exists()  # refused before any work
