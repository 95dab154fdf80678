"""``prefmill.build`` / ``prefmill.open`` from Python, as a notebook uses them: same versions as the CLI's
build; Prefect's log lines reach its API (the UI shows them) but not the terminal."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from tinybuild import TinyBuild

import prefmill


def _api_logs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def _runs() -> tuple[dict[str, list[str]], list[str]]:
    """Flow runs tagged with the tiny dataset (name -> tags) and its shard task runs' names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterName,
    )

    with get_client(sync_client=True) as client:
        flows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["dataset:tiny"]))
        )
        tasks = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="tiny-")))
    return {f.name: f.tags for f in flows}, [t.name for t in tasks]


def test_build_and_open_from_python(
    tiny_build: TinyBuild, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_build.folder, folder)
    capfd.readouterr()
    summary = prefmill.build(folder / "recipe.yaml", root=folder / "data")
    err = capfd.readouterr().err
    assert not re.search(r"\| (DEBUG|INFO|WARNING) +\|", err), err[:500]  # no Prefect console lines
    assert summary.versions == tiny_build.summary.versions
    assert all(t.cached for t in summary.tables)
    assert summary.flow_run_id and any("Finished in state" in m for m in _api_logs(summary.flow_run_id))
    flows, tasks = _runs()  # named by dataset and stage, tagged with the dataset and the recipe's hash
    assert {"tiny-build", "tiny-prompts", "tiny-synthesis", "tiny-evaluation", "tiny-instantiation"} <= set(
        flows
    )
    assert any(t.startswith("recipe:") for t in flows["tiny-build"])
    # the embedded model's 2 shards are batched as one group; the judges call no engine: a task a shard
    assert "tiny-synthesis-candidates-shards-0000-0001" in tasks
    assert "tiny-evaluation-judgments-shard-0001" in tasks
    ds = prefmill.open(folder / "data")
    assert ds.versions == summary.versions
    rows = {t.table: t.rows for t in tiny_build.summary.tables}
    assert ds.polars("pairs").height == rows["pairs"] > 0
