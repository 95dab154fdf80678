"""Instantiation stays within DuckDB's memory limit, spilling past it: lists of 160,000 candidates
(34 MB of texts) under a 176 MiB limit (one thread; measured: passes from 160 MiB, and the ordered
aggregate below failed up to 192 MiB). ``list(... ORDER BY ...)`` holding the texts could not spill
and ran out of memory there (and at 10M candidates under the default limit); the lists are now sorted
after grouping."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from prefmill.storage.duck import configure
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import instantiate_stream

PROMPTS, K, LENGTH = 20_000, 8, 200


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    n = len(next(iter(columns.values())))
    schema = SCHEMAS[name]
    return pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema)


def _ids(prefix: str, numbers: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(numbers, pa.string()), "")


def _con(limit: str, spill: Path) -> duckdb.DuckDBPyConnection:
    con = configure(duckdb.connect(":memory:"), memory_limit=limit, temp_directory=str(spill))
    con.execute("SET threads = 1")  # the same memory per thread on every machine
    n = PROMPTS * K
    index = pa.array(range(n))
    pids, cids = _ids("p", pc.divide(index, K)), _ids("c", index)
    con.register(
        "prompts",
        _table(
            "prompts",
            {
                "prompt_id": _ids("p", pa.array(range(PROMPTS))),
                "messages": pa.array([[{"role": "user", "content": "q"}]] * PROMPTS),
                "source": pa.array(["t"] * PROMPTS),
            },
        ),
    )
    con.register(
        "candidates",
        _table(
            "candidates",
            {
                "candidate_id": cids,
                "prompt_id": pids,
                "response": pc.binary_join_element_wise(pa.array(["x" * LENGTH] * n), cids, ""),
                "generator": pa.array(["g"] * n),
                "origin": pa.array(["offline"] * n),
                "sample_index": pc.cast(pc.bit_wise_and(index, K - 1), pa.int64()),
            },
        ),
    )
    con.register(
        "judgments",
        _table(
            "judgments",
            {
                "judgment_id": pc.binary_join_element_wise("j", cids, ""),
                "prompt_id": pids,
                "candidate_id": cids,
                "judge": pa.array(["j"] * n),
                "kind": pa.array(["llm"] * n),
                "mode": pa.array(["point"] * n),
                "criterion": pa.array(["overall"] * n),
                "granularity": pa.array(["outcome"] * n),
                "score": pc.cast(pc.bit_wise_and(index, 3), pa.float64()),
            },
        ),
    )
    return con


def test_lists_spill_instead_of_running_out_of_memory(tmp_path: Path) -> None:
    stream = instantiate_stream(_con("176MiB", tmp_path / "spill"), "lists", {})
    batches = stream.batches(rows=1)
    first = next(iter(batches)).to_pylist()[0]
    assert 1 + sum(b.num_rows for b in batches) == stream.rows == PROMPTS
    # the list order: score descending, ties by candidate_id
    assert first["scores"] == [3.0, 3.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0]
    assert first["prompt_id"] == "p0"
    assert first["candidate_ids"] == ["c3", "c7", "c2", "c6", "c1", "c5", "c0", "c4"]
    assert first["ranks"] == [1, 1, 3, 3, 5, 5, 7, 7]
    assert [c[LENGTH:] for c in first["completions"]] == first["candidate_ids"]
