"""Running the real `prefmill` command in a subprocess from tests."""

from __future__ import annotations

import os
import sys
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
