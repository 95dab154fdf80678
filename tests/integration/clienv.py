"""Running the real `prefmill` command in a subprocess from tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def cli_env(tmp_path: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for a `prefmill` subprocess: its own Prefect home, telemetry off, no colours.

    Without ``api_url`` the command starts a temporary Prefect API of its own, as it does for a user
    with no server configured (~10 s); with it, it talks to that running API instead."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
        NO_COLOR="1",
        TERM="dumb",
    )
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


PREFMILL = [sys.executable, "-m", "prefmill"]


def kill_when(cmd: list[str], env: dict[str, str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Run ``cmd`` in a session of its own and SIGKILL the whole session as soon as ``ready()``
    (or after ``timeout`` seconds, or when it exits by itself), as a crash would."""
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
