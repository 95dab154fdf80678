"""A build killed while it runs is not left "Running" in Prefect: SIGTERM marks it crashed at once;
after SIGKILL (nothing can run), the next run of the same build marks the dead process's runs crashed."""

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


def _kill_while_generating(tmp_path: Path, server: FaultServer, sig: signal.Signals) -> int:
    proc = subprocess.Popen(
        _command(tmp_path),
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not server.bodies and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.bodies and proc.poll() is None, "the build never reached the engine"
        proc.send_signal(sig)
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop_orphan_servers(prefect_home: Path) -> None:
    """Stop the temporary Prefect APIs the killed builds left running (their PREFECT_HOME is ours)."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if f"PREFECT_HOME={prefect_home}".encode() in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGTERM)


@pytest.fixture(autouse=True)
def _no_orphans(tmp_path: Path) -> Iterator[None]:
    yield
    _stop_orphan_servers(tmp_path / "prefect-home")


def test_sigterm_marks_crashed_and_a_rerun_marks_a_sigkilled_run(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text("".join(f'{{"prompt": "ok:p{i}"}}\n' for i in range(6)))
    with FaultServer(service_seconds=5.0) as slow:
        (tmp_path / "r.yaml").write_text(_recipe(slow.url))
        code = _kill_while_generating(tmp_path, slow, signal.SIGTERM)
    assert code != 0
    states = _states(tmp_path)
    assert states and "RUNNING" not in states.values(), states
    assert "CRASHED" in states.values()

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
