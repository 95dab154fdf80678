"""A build killed while it runs is not left "Running" in Prefect: SIGTERM and a terminal's Ctrl-C (SIGINT to
the whole process group) mark it crashed at once and leave no temporary Prefect API behind; after SIGKILL
(nothing can run), the next run of the same build marks the dead process's runs crashed."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clienv import PREFMILL, cli_env
from fault_server import FaultServer

pytestmark = pytest.mark.slow


def _recipe(url: str) -> str:
    return (
        "dataset: killed\n"
        "prompts:\n  sources:\n    - kind: file\n      path: prompts.jsonl\n"
        f'synthesis:\n  engine: "openai:m@{url}?max_concurrency=1&min_concurrency=1"\n'
        "  k: 1\n  max_new_tokens: 8\n"
    )


def _command(tmp_path: Path) -> list[str]:
    root = str(tmp_path / "data")
    return [*PREFMILL, "build", str(tmp_path / "r.yaml"), "--root", root, "--stop-after", "synthesis"]


def _states(tmp_path: Path) -> dict[str, str]:
    """Flow-run id -> state type, from Prefect's database (every run of a build has the same names,
    DATASET-STAGE, so runs are told apart by id)."""
    [db] = (tmp_path / "prefect-home").rglob("prefect.db")
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT id, state_type FROM flow_run").fetchall())


def _as_from_a_terminal() -> None:
    """The build's own process group (so killpg reaches it and not pytest), with Ctrl-C's default
    action (a test run in the background inherits SIGINT ignored)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_while_generating(
    tmp_path: Path, server: FaultServer, sig: signal.Signals, *, group: bool = False
) -> tuple[int, str]:
    """Start a build, send ``sig`` once it reaches the engine (to its whole process group with
    ``group``, as a terminal's Ctrl-C does), and return its exit status and stderr."""
    # stderr to a file: a pipe stays open while anything the build started lives (after SIGKILL)
    err_path = tmp_path / f"stderr-{sig.name}.txt"
    err_file = err_path.open("w")
    proc = subprocess.Popen(
        _command(tmp_path),
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=err_file,
        preexec_fn=_as_from_a_terminal if group else None,
    )
    try:
        deadline = time.monotonic() + 300
        while not server.bodies and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.bodies and proc.poll() is None, "the build never reached the engine"
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        code = proc.wait(timeout=120)
        return code, err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err_file.close()


def _leftovers(prefect_home: Path) -> list[int]:
    """Live processes whose environment has our PREFECT_HOME (a temporary Prefect API left behind)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"PREFECT_HOME={prefect_home}".encode() in environ.read_bytes().split(b"\0"):
                stat = (environ.parent / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":  # a zombie is gone, only not reaped
                    found.append(int(environ.parent.name))
    return found


@pytest.fixture(autouse=True)
def _no_orphans(tmp_path: Path) -> Iterator[None]:
    """Whatever a test asserted, stop what a failing build left running (the SIGKILL one may)."""
    yield
    for pid in _leftovers(tmp_path / "prefect-home"):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _assert_nothing_left(prefect_home: Path) -> None:
    deadline = time.monotonic() + 10
    while (left := _leftovers(prefect_home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


def test_ctrl_c_to_the_process_group_marks_crashed_at_once(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text("".join(f'{{"prompt": "ok:p{i}"}}\n' for i in range(6)))
    with FaultServer(service_seconds=5.0) as slow:
        (tmp_path / "r.yaml").write_text(_recipe(slow.url))
        code, err = _kill_while_generating(tmp_path, slow, signal.SIGINT, group=True)
    assert code == 130, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err, err[-2000:]
    states = _states(tmp_path)
    assert states and "RUNNING" not in states.values(), states
    assert "CRASHED" in states.values()
    _assert_nothing_left(tmp_path / "prefect-home")


def test_sigterm_marks_crashed_and_a_rerun_marks_a_sigkilled_run(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text("".join(f'{{"prompt": "ok:p{i}"}}\n' for i in range(6)))
    with FaultServer(service_seconds=5.0) as slow:
        (tmp_path / "r.yaml").write_text(_recipe(slow.url))
        code, _ = _kill_while_generating(tmp_path, slow, signal.SIGTERM)
    assert code == -signal.SIGTERM  # ended by the signal: 143 in a shell
    states = _states(tmp_path)
    assert states and "RUNNING" not in states.values(), states
    assert "CRASHED" in states.values()
    _assert_nothing_left(tmp_path / "prefect-home")

    with FaultServer(service_seconds=5.0) as slow:
        (tmp_path / "r.yaml").write_text(_recipe(slow.url))
        _kill_while_generating(tmp_path, slow, signal.SIGKILL)
    killed = {run for run, state in _states(tmp_path).items() if state == "RUNNING"}
    assert killed  # nothing could mark them: SIGKILL

    with FaultServer() as fast:
        (tmp_path / "r.yaml").write_text(_recipe(fast.url))
        done = subprocess.run(
            _command(tmp_path), env=cli_env(tmp_path), capture_output=True, text=True, timeout=400
        )
    assert done.returncode == 0, done.stderr[-2000:]
    after = _states(tmp_path)
    assert {after[run] for run in killed} == {"CRASHED"}, after
    assert "RUNNING" not in after.values()
