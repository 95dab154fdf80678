"""A Ctrl-C or SIGTERM is handled at once while a shard waits on its engine: the wait is sliced (a
signal handler runs within WAKE_SECONDS), the engine call is cancelled, and the CLI exits 130."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefmill.cli import INTERRUPTED, run
from prefmill.engines.batching import WAKE_SECONDS, LoopThread, cancel_loop_calls


class Stop(BaseException):
    pass


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    lt = LoopThread("test-interrupts")
    yield lt
    lt.loop.call_soon_threadsafe(lt.loop.stop)


def test_a_signal_interrupts_a_wait_on_the_loop_and_cancels_the_call(loop: LoopThread) -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def stop(signum: int, frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGUSR1, stop)
    try:
        timer = threading.Timer(0.1, signal.raise_signal, (signal.SIGUSR1,))
        started = time.monotonic()
        timer.start()
        with pytest.raises(Stop):
            loop.run(slow)
        assert time.monotonic() - started < 0.1 + 4 * WAKE_SECONDS
    finally:
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
    assert cancelled.wait(2)


def test_cancel_loop_calls_stops_other_threads_waits(loop: LoopThread) -> None:
    outcome: list[str] = []

    def shard() -> None:
        try:
            loop.run(lambda: asyncio.sleep(30))
            outcome.append("finished")
        except BaseException as exc:  # CancelledError
            outcome.append(type(exc).__name__)

    worker = threading.Thread(target=shard)
    worker.start()
    deadline = time.monotonic() + 2
    while not cancel_loop_calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.join(2)
    assert outcome == ["CancelledError"]


def test_ctrl_c_in_a_command_exits_130_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("prefmill.flows.fastpath.unchanged_build", interrupted)
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "dataset: d\nprompts:\n  sources:\n    - kind: file\n      path: p.jsonl\n"
        'synthesis:\n  engine: "scripted:echo"\n'
    )
    assert run(["build", str(recipe), "--root", str(tmp_path / "data")]) == 130
    err = capsys.readouterr().err
    assert INTERRUPTED in err and "Traceback" not in err


def test_sigterm_stops_the_temporary_api_then_does_what_it_did_before() -> None:
    from prefmill.flows.startup import _stop_on_sigterm

    events: list[str] = []

    class Server:
        def stop(self) -> None:
            events.append("stopped")

    def programs_handler(signum: int, frame: object) -> None:
        events.append(f"handler {signum}")

    saved = signal.signal(signal.SIGTERM, programs_handler)  # a program calling prefmill's API
    try:
        _stop_on_sigterm(Server())
        assert signal.getsignal(signal.SIGTERM) is not programs_handler
        signal.raise_signal(signal.SIGTERM)
        assert events == ["stopped", f"handler {int(signal.SIGTERM)}"]
        assert signal.getsignal(signal.SIGTERM) is programs_handler
    finally:
        signal.signal(signal.SIGTERM, saved)
