"""`task_runner: dask`: the shards of a small real build run on a local Dask cluster of two worker
processes (Prefect's DaskTaskRunner), writing into an S3 root on a loopback server; the tables are the
same rows as the in-process build, the model ran in the workers (not the flow's process), and the
workers' task runs were recorded by the flow's Prefect API."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tables_equal import content

from prefmill.engines.registry import loaded_engines
from prefmill.errors import RunnerError
from prefmill.flows import run_build
from prefmill.recipe import parse_recipe
from prefmill.storage import Store
from s3server import S3Server, s3_server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

RECIPE = """\
dataset: dk
seed: 4
shard_size: 2
prompts:
  sources:
    - kind: arithmetic
      n: 6
      seed: 2
synthesis:
  k: 2
  max_new_tokens: 16
"""
TABLES = ("prompts", "candidates", "judgments", "pairs", "points", "lists")


def _served() -> int:
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


def _task_runs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
        )
    return sorted(f"{r.name.rsplit('-', 1)[0]}:{r.state_name}" for r in runs)


def test_dask_build_matches_local_build(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    recipe = parse_recipe(RECIPE, base_dir=tmp_path)
    root = f"s3://{s3_server.new_bucket()}/prefmill"
    served = _served()
    remote = run_build(recipe, root, task_runner="dask", workers=2)
    assert _served() == served  # no sample was generated in the flow's process
    store = Store(root)
    candidates = store.manifest("dk", "candidates", remote.version("candidates"))
    judgments = store.manifest("dk", "judgments", remote.version("judgments"))
    assert candidates.flow_run_id and judgments.flow_run_id
    assert _task_runs(candidates.flow_run_id) == ["generate-shard:Completed"] * 3
    assert _task_runs(judgments.flow_run_id) == ["judge-shard:Completed"] * 3

    # Dask's nanny starts workers with OMP_NUM_THREADS=1; a float sum split over another number of
    # threads can flip a near-tie when sampling, so the local build runs single-threaded like them
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_build(recipe, str(tmp_path / "local"))
    finally:
        torch.set_num_threads(threads)
    assert _served() > served  # the local build did generate here
    local_store = Store(tmp_path / "local")
    for table in TABLES:
        assert remote.version(table) == local.version(table)
        got = content(store, "dk", table, remote.version(table))
        assert got == content(local_store, "dk", table, local.version(table)), table
    assert len(content(store, "dk", "candidates", remote.version("candidates"))) == 12


def test_task_runner_errors_are_clear(tmp_path: Path) -> None:
    recipe = parse_recipe(RECIPE, base_dir=tmp_path)
    with pytest.raises(RunnerError, match="unknown: use one of local, dask, ray"):
        run_build(recipe, str(tmp_path / "a"), task_runner="spark")
    with pytest.raises(RunnerError, match=r"cannot see the local root .* object storage"):
        run_build(recipe, str(tmp_path / "a"), task_runner="dask", runner_address="tcp://10.0.0.1:8786")
    assert not (tmp_path / "a").exists()  # refused before any work
