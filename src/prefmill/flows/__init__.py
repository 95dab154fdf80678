"""Prefect flows: one per stage, and ``build`` that runs them in order.

Importing this package applies prefmill's Prefect settings (telemetry off, start-up timeout) first;
the flows themselves (and Prefect) are imported on first use of their names, so the prefect-free
parts (``flows.plan``, ``flows.plans``, ``flows.fastpath``) load without Prefect.
"""

from prefmill import prefect_env  # noqa: F401  (must run before prefect is imported)
from prefmill.lazy import lazy_exports

__all__ = ["BuildSummary", "build_flow", "run_build"]
__getattr__, __dir__ = lazy_exports(
    __name__, {"BuildSummary": "build", "build_flow": "build", "run_build": "build"}
)
