"""Prefect settings prefmill needs, applied before Prefect is imported.

- telemetry off, so nothing tries to leave the machine;
- a longer start-up timeout for the temporary local API on 2-core machines (~6-10 s measured).
Values already set in the environment win.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def apply_prefect_env() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


apply_prefect_env()
