"""Instantiation: turn scored candidates into the ``pairs``, ``points`` and ``lists`` tables with SQL."""

from __future__ import annotations

from prefmill.tasks.instantiation.run import (
    CONTENT_ID_MACRO,
    DEFAULT_PARAMS,
    INSTANTIATION_CODE_VERSION,
    OUTPUTS,
    bind_candidate_scores,
    instantiate,
    sql_parameters,
)

__all__ = [
    "CONTENT_ID_MACRO",
    "DEFAULT_PARAMS",
    "INSTANTIATION_CODE_VERSION",
    "OUTPUTS",
    "bind_candidate_scores",
    "instantiate",
    "sql_parameters",
]
