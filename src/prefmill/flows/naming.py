"""Names and tags of prefmill's runs in Prefect's UI: by dataset and stage, not Prefect's random pairs.

A flow run is ``DATASET-STAGE`` (``quickstart-synthesis``, ``quickstart-build``); a shard task run is
``DATASET-STAGE-TABLE-shard-NNNN`` (``quickstart-synthesis-candidates-shard-0003``). A build's runs are
tagged ``dataset:NAME`` and ``recipe:HASH`` (the recipe's content hash), so the UI filters one
dataset's or one recipe's runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefmill.ids import content_id


def _dataset_of(params: Mapping[str, Any]) -> str | None:
    value = params.get("dataset")
    if isinstance(value, str):
        return value
    for value in params.values():  # a recipe, a plan or a manifest names its dataset
        name = getattr(value, "dataset", None)
        if isinstance(name, str):
            return name
        if isinstance(value, tuple | list) and value:
            name = getattr(value[0], "dataset", None)
            if isinstance(name, str):
                return name
    path = params.get("recipe_path")
    if isinstance(path, str):
        from pathlib import Path

        return Path(path).stem
    return None


def flow_run_name() -> str:
    """``DATASET-STAGE`` of the flow run being created (Prefect calls this for every stage flow)."""
    from prefect.runtime import flow_run

    stage = str(flow_run.flow_name).removeprefix("prefmill-")
    dataset = _dataset_of(flow_run.parameters)
    return f"{dataset}-{stage}" if dataset else stage


def shard_run_name() -> str:
    """``DATASET-STAGE-TABLE-shard-NNNN`` of the shard task run being created."""
    from prefect.runtime import task_run

    job = task_run.parameters.get("job")
    if job is None:
        return str(task_run.task_name)
    return f"{_prefix(job)}-shard-{job.shard.index:04d}"


def window_run_name() -> str:
    """``DATASET-STAGE-TABLE-shards-NNNN-MMMM`` of a task run of several shards (first and last)."""
    from prefect.runtime import task_run

    jobs = task_run.parameters.get("jobs")
    if not jobs:
        return str(task_run.task_name)
    return f"{_prefix(jobs[0])}-shards-{jobs[0].shard.index:04d}-{jobs[-1].shard.index:04d}"


def _prefix(job: Any) -> str:
    """``DATASET-STAGE-TABLE`` of a shard job (its task's name where it writes no table)."""
    return f"{job.dataset}-{job.stage}-{job.table or job.shard.task}"


def recipe_hash(recipe: Any) -> str:
    """A short content hash of a recipe (every field but the folder it was read from)."""
    return content_id(recipe.model_dump(mode="json", exclude={"base_dir"}))[:12]


def run_tags(recipe: Any, root: str) -> list[str]:
    """The tags of every run of one build, first the build's own key (``prefmill-build:KEY``, from the
    dataset and root), then the process running it (``pid:``, ``host:``: a later run tells a dead
    process's runs from a live one's, flows/startup.py ``mark_stale_runs``), then ``dataset:NAME`` and
    ``recipe:HASH`` for filtering the UI."""
    import hashlib
    import os
    import socket

    key = hashlib.sha256(f"{root}\n{recipe.dataset}".encode()).hexdigest()[:16]
    return [
        f"prefmill-build:{key}",
        f"pid:{os.getpid()}",
        f"host:{socket.gethostname()}",
        f"dataset:{recipe.dataset}",
        f"recipe:{recipe_hash(recipe)}",
    ]
