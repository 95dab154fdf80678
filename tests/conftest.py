"""Test-wide settings: Prefect's telemetry off and a generous start-up timeout, before any import."""

from prefmill.prefect_env import apply_prefect_env

apply_prefect_env()
