"""Lockstep groups in the flow's process: two group tasks in flight at once, so the next group's task
starts (and reads its prompts) while the engine runs the first group's call."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import pytest

from prefmill.flows import stage
from prefmill.flows.stage import Shard, ShardJob


def _job(index: int, group: int) -> ShardJob:
    return ShardJob("root", "ds", "synthesis", Shard(index, lambda *a: None, units=4), group=group)


def test_two_lockstep_groups_run_at_once_each_in_shard_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run_shards(
        stage_name: str,
        task: Any,
        calls: Mapping[Hashable, tuple[Any, ...]],
        units: Mapping[Hashable, int] | None = None,
        window: int = 1,
    ) -> Iterator[tuple[Hashable, Any]]:
        seen["window"], seen["chunks"] = window, list(calls)
        for chunk, (jobs, lockstep) in calls.items():
            assert lockstep
            yield chunk, [j.shard.index for j in jobs]

    monkeypatch.setattr(stage, "run_shards", fake_run_shards)
    # three groups of two shards, given out of order
    jobs = {k: _job(k, k // 2) for k in (5, 0, 3, 1, 4, 2)}
    out = dict(stage._run_groups("synthesis", "cands", jobs))
    assert seen["window"] == 2
    assert seen["chunks"] == [(4, 5), (0, 1), (2, 3)]  # a group's members in shard order
    assert out == {k: k for k in range(6)}
