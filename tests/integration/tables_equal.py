"""Compare the tables of two builds row by row, leaving out what legitimately differs between runs
(wall-clock latencies)."""

from __future__ import annotations

import pyarrow as pa

from prefmill.storage import Store

#: columns that measure time, not content
TIMING_COLUMNS = ("latency_ms",)
#: each table's id column, to put rows in one order
SORT_KEYS = {
    "prompts": "prompt_id",
    "candidates": "candidate_id",
    "judgments": "judgment_id",
    "pairs": "pair_id",
    "points": "point_id",
    "lists": "list_id",
}


def content(store: Store, dataset: str, table: str, version: str) -> list[dict]:
    """A version's rows without timing columns, sorted by the table's id."""
    data: pa.Table = store.read_arrow(store.manifest(dataset, table, version))
    keep = [c for c in data.column_names if c not in TIMING_COLUMNS]
    return data.select(keep).sort_by(SORT_KEYS[table]).to_pylist()
