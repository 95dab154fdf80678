"""Several shards in flight through one engine: the coalescer that merges concurrent engine calls
into shared batches, the openai engine's shared limit, and the window the stage skeleton derives."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from delay_server import DelayServer, answer_text

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.batching import IN_FLIGHT, Coalescer
from prefmill.engines.openai.engine import OpenAIEngine
from prefmill.engines.registry import engine_concurrency
from prefmill.flows.runners import shard_window


def _square_batches(sizes: list[int]) -> Coalescer[int, int]:
    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x * x for x in items]

    return Coalescer(run, lambda text: -1, batch_size=16)


def _together(calls: list[list[int]], fn: object) -> list[list[int]]:
    """Run ``fn(items)`` for every call at once, from its own thread, all started together."""
    barrier = threading.Barrier(len(calls))

    def one(items: list[int]) -> list[int]:
        barrier.wait()
        return fn(items)  # type: ignore[operator]

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def test_concurrent_calls_share_full_batches_and_get_their_own_rows() -> None:
    sizes: list[int] = []
    coalesce = _square_batches(sizes)
    calls = [list(range(n * 4, n * 4 + 4)) for n in range(8)]  # 8 shards of 4 requests
    out = _together(calls, coalesce)
    assert out == [[x * x for x in c] for c in calls]
    assert sum(sizes) == 32 and max(sizes) == 16  # the engine saw batches across shards
    assert len(sizes) < 8  # fewer batches than shards


def test_a_failing_batch_gives_error_rows_and_does_not_stall_the_others() -> None:
    sizes: list[int] = []
    coalesce = Coalescer(
        lambda items: [-1 if x < 0 else x for x in items] if -99 not in items else 1 / 0, str, 2
    )
    calls = [[1, 2], [-99, 3], [4, 5], [6, 7]]
    out = _together(calls, coalesce)
    assert out[0] == [1, 2] and out[2] == [4, 5] and out[3] == [6, 7]
    assert all(isinstance(v, str) and "ZeroDivisionError" in v for v in out[1])
    assert IN_FLIGHT.now == 0
    del sizes


def test_progress_reaches_each_caller_in_its_own_context() -> None:
    mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="?")
    seen: list[tuple[str, int]] = []
    coalesce = Coalescer(lambda items: items, str, batch_size=3)

    def call(name: str) -> list[int]:
        mark.set(name)
        return coalesce([1, 2, 3, 4], lambda n: seen.append((mark.get(), n)))

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(call, ["a", "b", "c"])) == [[1, 2, 3, 4]] * 3
    for name in "abc":
        assert sum(n for who, n in seen if who == name) == 4


def test_window_follows_the_engine_concurrency_or_the_recipe() -> None:
    assert shard_window(None, [32] * 100) == 1  # no engine: one shard at a time
    assert shard_window(256, [32] * 100) == 16  # twice 256 requests queued
    assert shard_window(256, [32] * 5) == 5  # never more than the shards
    assert shard_window(256, [32] * 100, configured=3) == 3
    assert shard_window(64, [1000] * 4) == 1
    assert engine_concurrency("openai:m@http://h/v1?max_concurrency=256") == 256
    assert engine_concurrency("openai:m@http://h/v1", batch_size=8) == 16  # its default; batch ignored
    assert engine_concurrency("transformers:smollm2", batch_size=12) == 12
    assert engine_concurrency("transformers:smollm2?batch_size=5") == 5


def _requests(tag: str, n: int) -> list[GenerationRequest]:
    sampling = SamplingParams(max_new_tokens=4)
    return [GenerationRequest([{"role": "user", "content": f"{tag}-{i}"}], sampling, i) for i in range(n)]


def test_openai_calls_from_several_shards_are_in_flight_together() -> None:
    with DelayServer(delay=0.05) as server:
        engine = OpenAIEngine("m", server.url, max_concurrency=64)
        calls = [_requests(f"shard{n}", 4) for n in range(4)]
        out = _together(calls, engine.generate)
    for rows, reqs in zip(out, calls, strict=True):  # each shard gets its own answers, in order
        assert [g.text for g in rows] == [answer_text(r.messages[0]["content"], r.seed) for r in reqs]
    assert server.peak > 4  # more than one shard's requests reached the server at once
    assert engine.last_limiter is not None and engine.last_limiter.peak_in_flight > 4


def test_plain_progress_shows_requests_in_flight_and_the_summary_the_concurrency() -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from prefmill.ui import PlainReporter, render_summary

    out = io.StringIO()
    r = PlainReporter(out)
    r.stage_started("synthesis", shards=4, done=0, units=128, unit="samples")
    r.in_flight("synthesis", requests=96, peak=128)
    r.advance("synthesis", units=32)
    r.shard_done("synthesis")
    assert "96 in flight" in out.getvalue().splitlines()[-1]

    table = SimpleNamespace(
        table="candidates",
        version="v",
        rows=128,
        cached=False,
        seconds=1.0,
        totals={},
        stats={},
        in_flight=(201.5, 256, 16),
    )
    summary = SimpleNamespace(
        dataset="d",
        tables=[table],
        cost_usd=0,
        seconds=1.0,
        tokens=0,
        ref="latest",
        stopped_after=None,
        root="/r",
    )
    con = Console(file=io.StringIO(), width=200)
    render_summary(summary, con)
    assert "candidates: 201.5 requests in flight on average (peak 256), up to 16 shard(s) at once" in (
        con.file.getvalue()
    )


def test_in_process_engines_run_their_shards_in_lockstep_groups() -> None:
    # their log-probs depend on what shares a batch: their shards are batched in fixed groups
    from prefmill.flows.runners import engines_concurrency, engines_lockstep, group_size

    assert engines_concurrency([("transformers:smollm2", 12)]) == 12
    assert engines_lockstep([("transformers:smollm2", 12)]) is True
    assert group_size(engines_concurrency([("transformers:smollm2", 64)]), [32] * 8) == 4
    assert group_size(64, [32] * 2 + [8]) == 4  # full shards decide, not how many there are
    assert group_size(64, [32] * 8, configured=3) == 3
    assert engines_concurrency([("openai:m@http://h/v1?max_concurrency=64", None)]) == 64
    assert engines_lockstep([("openai:m@http://h/v1?max_concurrency=64", None)]) is False
    assert engines_lockstep([("transformers:smollm2", 12), ("openai:m@http://h/v1", None)]) is True
    assert engines_concurrency([("transformers:smollm2", 12), ("openai:m@http://h/v1", None)]) == 16
