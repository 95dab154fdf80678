"""Instantiation: turn scored candidates into the ``pairs``, ``points`` and ``lists`` tables with SQL."""

from __future__ import annotations

from prefmill.storage.tables import OUTPUTS
from prefmill.tasks.instantiation.params import DEFAULT_PARAMS, PAIR_STRATEGIES, check_params, sql_params
from prefmill.tasks.instantiation.run import (
    CONTENT_ID_MACRO,
    EMBEDDINGS_SCHEMA,
    INSTANTIATION_CODE_VERSION,
    Instantiated,
    InstantiatedStream,
    bind_candidate_scores,
    bind_embeddings,
    instantiate,
    instantiate_stream,
    instantiate_with_report,
    sql_parameters,
)

__all__ = [
    "CONTENT_ID_MACRO",
    "DEFAULT_PARAMS",
    "EMBEDDINGS_SCHEMA",
    "INSTANTIATION_CODE_VERSION",
    "OUTPUTS",
    "PAIR_STRATEGIES",
    "Instantiated",
    "InstantiatedStream",
    "bind_candidate_scores",
    "bind_embeddings",
    "check_params",
    "instantiate",
    "instantiate_stream",
    "instantiate_with_report",
    "sql_parameters",
    "sql_params",
]
