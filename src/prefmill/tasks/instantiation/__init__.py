"""Instantiation: turn scored candidates into the ``pairs``, ``points`` and ``lists`` tables with SQL.

The recipe's ``instantiation`` section is declared here (``config``); the names below are imported on
first use, so that the recipe can import that config without DuckDB and the SQL runner behind it.
"""

from __future__ import annotations

from prefmill.lazy import lazy_exports
from prefmill.storage.tables import OUTPUTS as OUTPUTS

_MODULE_OF = {
    "DEFAULT_PARAMS": "params",
    "PAIR_STRATEGIES": "params",
    "check_params": "params",
    "sql_params": "params",
    "CONTENT_ID_MACRO": "run",
    "EMBEDDINGS_SCHEMA": "run",
    "INSTANTIATION_CODE_VERSION": "run",
    "Instantiated": "run",
    "InstantiatedStream": "run",
    "bind_candidate_scores": "run",
    "bind_embeddings": "run",
    "instantiate": "run",
    "instantiate_stream": "run",
    "instantiate_with_report": "run",
    "sql_parameters": "run",
}

__all__ = sorted(["OUTPUTS", *_MODULE_OF])


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, also=("OUTPUTS",))
