"""Instantiation outputs kept in DuckDB and written in batches: stats computed there, memory settings."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.flows.instantiation import output_stats
from prefmill.storage import Store
from prefmill.storage.duck import configure, default_memory_limit, scratch_dir
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import instantiate_stream, sql_params
from prefmill.tasks.instantiation.config import InstantiationConfig
from prefmill.tasks.instantiation.output_stats import stream_stats


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    prompts = [
        {"prompt_id": p, "messages": [{"role": "user", "content": f"q {p}"}], "source": "t"} for p in "ab"
    ]
    cands, judgments = [], []
    for p in "ab":
        for i, score in enumerate((1.0, 0.5, 0.5, 0.0)):
            cid = f"{p}{i}"
            cands.append(
                {
                    "candidate_id": cid,
                    "prompt_id": p,
                    "response": f"r {cid}",
                    "generator": "g",
                    "origin": "offline",
                    "sample_index": i,
                }
            )
            judgments.append(
                {
                    "judgment_id": f"j{cid}",
                    "prompt_id": p,
                    "candidate_id": cid,
                    "judge": "j",
                    "kind": "llm",
                    "mode": "point",
                    "criterion": "overall",
                    "granularity": "outcome",
                    "score": score,
                }
            )
    for name, rows in (("prompts", prompts), ("candidates", cands), ("judgments", judgments)):
        con.register(name, pa.Table.from_pylist(rows, schema=SCHEMAS[name]))
    return con


def test_stream_batches_and_stats_equal_the_table_path() -> None:
    for output in ("pairs", "points", "lists"):
        stream = instantiate_stream(_con(), output, {"label_rule": "quantile"})
        batches = list(stream.batches(rows=1))  # one row per batch, each checked and cast
        assert len(batches) == stream.rows and all(b.num_rows == 1 for b in batches)
        table = pa.concat_tables(batches)
        assert table.equals(stream.table())
        assert stream_stats(stream) == output_stats(output, table, stream.removed)
    points = instantiate_stream(_con(), "points", {"label_rule": "quantile"})
    assert points.removed == {"quantile_middle": 4} and points.rows == 4


def test_streamed_shard_is_one_part_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stream = instantiate_stream(_con(), "points", {})
    writer = Store(str(tmp_path)).open_version("d", "points", "v1")
    assert writer.write_shard(0, stream.batches(rows=3)) == 8
    written = pq.read_table(writer.shard_path(0))
    assert written.equals(stream.table()) and pq.read_metadata(writer.shard_path(0)).num_row_groups == 3


def test_memory_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(str(tmp_path))
    scratch = scratch_dir(store, "d")
    assert scratch is not None and scratch.endswith("/d/_scratch")
    con = configure(duckdb.connect(":memory:"), memory_limit="512MiB", temp_directory=scratch)
    limit, temp = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()[0]
    assert limit.replace(" ", "") in ("512.0MiB", "536.8MB") and temp == scratch
    assert default_memory_limit(0.25).endswith("GiB")
    assert store.tables("d") == []  # the scratch folder is never a table
    assert InstantiationConfig(memory_limit="4GB").memory_limit == "4GB"
    assert "memory_limit" not in sql_params(InstantiationConfig(memory_limit="4GB"), 0)
