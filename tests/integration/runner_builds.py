"""A small real build run under a distributed task runner and compared with the same build run in
process: the same rows in every table, the model ran in the workers (not the flow's process), and
the workers' task runs were recorded by the flow's Prefect API. Shared by the Dask and Ray tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from tables_equal import content

from prefmill.engines.registry import loaded_engines
from prefmill.flows import run_build
from prefmill.recipe import Recipe, parse_recipe
from prefmill.storage import Store

DATASET = "dk"
RECIPE = f"""\
dataset: {DATASET}
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


def recipe(tmp_path: Path) -> Recipe:
    return parse_recipe(RECIPE, base_dir=tmp_path)


def served() -> int:
    """Samples the engines of this process have generated so far."""
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


def task_runs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
        )
    return sorted(f"{r.name.rsplit('-', 1)[0]}:{r.state_name}" for r in runs)


def build_matches_local_build(tmp_path: Path, root: str, task_runner: str, workers: int = 2) -> None:
    """Build under ``task_runner`` into ``root``, then in process, and compare every table."""
    parsed = recipe(tmp_path)
    before = served()
    remote = run_build(parsed, root, task_runner=task_runner, workers=workers)
    assert served() == before  # no sample was generated in the flow's process
    store = Store(root)
    candidates = store.manifest(DATASET, "candidates", remote.version("candidates"))
    judgments = store.manifest(DATASET, "judgments", remote.version("judgments"))
    assert candidates.flow_run_id and judgments.flow_run_id
    # the in-process transformers engine batches its shards in fixed groups (all 3 here: one task on
    # one worker, whose engine gets their requests together); the heuristic judge calls no engine,
    # so each of its shards is its own task
    assert task_runs(candidates.flow_run_id) == [f"{DATASET}-synthesis-candidates-shards-0000:Completed"]
    assert task_runs(judgments.flow_run_id) == [f"{DATASET}-evaluation-judgments-shard:Completed"] * 3

    # Dask's nanny and Ray start workers with OMP_NUM_THREADS=1; a float sum split over another
    # number of threads can flip a near-tie when sampling, so the local build runs single-threaded
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = run_build(parsed, str(tmp_path / "local"))
    finally:
        torch.set_num_threads(threads)
    assert served() > before  # the local build did generate here
    local_store = Store(tmp_path / "local")
    for table in TABLES:
        assert remote.version(table) == local.version(table)
        got = content(store, DATASET, table, remote.version(table))
        assert got == content(local_store, DATASET, table, local.version(table)), table
    assert len(content(store, DATASET, "candidates", remote.version("candidates"))) == 12
