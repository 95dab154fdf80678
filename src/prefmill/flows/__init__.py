"""Prefect flows: one per stage, and ``build`` that runs them in order.

Importing this package applies prefmill's Prefect settings (telemetry off, start-up timeout) first.
"""

from prefmill import prefect_env  # noqa: F401  (must run before prefect is imported)
from prefmill.flows.build import BuildSummary, build_flow, run_build

__all__ = ["BuildSummary", "build_flow", "run_build"]
