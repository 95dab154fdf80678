"""Lockstep groups of shards (``engines.lockstep``): the calls of a fixed group of shards reach an
in-process engine as batches whose composition depends on the group alone, never on timing."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from prefmill.engines.batching import Coalescer
from prefmill.engines.lockstep import GroupCancelled, ShardGroup, current


def _engine(log: list[list[int]], batch_size: int = 4) -> Coalescer[int, int]:
    def run(items: list[int]) -> list[int]:
        log.append(list(items))
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x * 10 for x in items]

    return Coalescer(run, lambda text: -1, batch_size=batch_size)


def _group(engines: list[Coalescer[int, int]], shards: list[list[tuple[int, list[int]]]], seed: int) -> list:
    """Run each shard (a list of (engine number, items) calls) as a member of one group, each
    member sleeping a random time before each call; returns each shard's results."""
    rng = random.Random(seed)
    delays = [[rng.random() * 0.02 for _ in calls] for calls in shards]
    group = ShardGroup(len(shards))

    def member(n: int) -> list[list[int]]:
        out = []
        with group.member(n):
            assert current() is group
            for (e, items), delay in zip(shards[n], delays[n], strict=True):
                time.sleep(delay)
                out.append(engines[e](items))
        return out

    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        return list(pool.map(member, range(len(shards))))


SHARDS = [
    [(0, [1, 2, 3]), (1, [4])],  # generate, then score
    [(0, [5, 6])],  # one call only: the group must not wait for its second
    [(1, [7, 8]), (0, [9])],  # the other order
    [],  # no engine call at all
    [(0, [10, 11, 12, 13, 14]), (0, [15])],
]


def test_a_group_batches_the_same_way_whatever_the_timing() -> None:
    compositions = []
    for seed in range(6):
        logs: list[list[int]] = [[], []]
        engines = [_engine(logs[0]), _engine(logs[1])]
        results = _group(engines, SHARDS, seed)
        assert results == [
            [[10, 20, 30], [40]],
            [[50, 60]],
            [[70, 80], [90]],
            [],
            [[100, 110, 120, 130, 140], [150]],
        ]
        compositions.append(logs)
    assert all(c == compositions[0] for c in compositions)  # timing never changes what shares a call
    gen, score = compositions[0]
    # the first call of every member waiting on the generate queue, concatenated in member order
    assert gen[0] == [1, 2, 3, 5, 6, 10, 11, 12, 13, 14]
    assert sorted(x for call in gen for x in call) == [1, 2, 3, 5, 6, 9, 10, 11, 12, 13, 14, 15]
    assert sorted(x for call in score for x in call) == [4, 7, 8]


def test_outside_a_group_calls_merge_by_timing_as_before() -> None:
    log: list[list[int]] = []
    engine = _engine(log, batch_size=4)
    assert current() is None
    assert engine([1, 2, 3, 4, 5]) == [10, 20, 30, 40, 50]
    assert log == [[1, 2, 3, 4], [5]]  # the queue's own batch_size applies only outside a group


def test_a_failing_engine_call_fails_the_items_of_every_member_that_shared_it() -> None:
    log: list[list[int]] = []
    engine = _engine(log)
    results = _group([engine], [[(0, [1, -2])], [(0, [3])]], seed=0)
    assert results == [[[-1, -1]], [[-1]]]  # error rows, not a stalled group
    assert log == [[1, -2, 3]]


def test_cancel_releases_members_waiting_on_a_peer() -> None:
    group = ShardGroup(2)
    engine = _engine([])
    errors: list[BaseException] = []

    def waiting() -> None:
        with group.member(0):
            try:
                engine([1])  # member 1 never calls nor finishes: this waits
            except GroupCancelled as exc:
                errors.append(exc)

    t = threading.Thread(target=waiting)
    t.start()
    time.sleep(0.05)
    assert t.is_alive()
    group.cancel()
    t.join(timeout=2)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(AssertionError):
        group.gather(0, lambda items: items, [1])  # not a member
