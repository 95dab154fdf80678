"""Instantiation outputs kept in DuckDB and written in batches: stats computed there, memory settings."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefmill.errors import QueryError
from prefmill.flows.instantiation import output_stats
from prefmill.storage import Store
from prefmill.storage.duck import configure, default_memory_limit, scratch_dir
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import instantiate_stream, sql_params
from prefmill.tasks.instantiation.config import InstantiationConfig


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
        stats = stream.stats.result(stream.removed)
        assert stats == output_stats(output, table, stream.removed) and stats["prompts"] == 2
        assert table.equals(stream.table()) and stream.stats.result(stream.removed) == stats  # reruns
    points = instantiate_stream(_con(), "points", {"label_rule": "quantile"})
    assert sum(b.num_rows for b in points.batches(rows=3)) == 4  # the middle rows left out
    assert points.removed == {"quantile_middle": 4} and points.rows == 4


def test_streamed_shard_is_one_part_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stream = instantiate_stream(_con(), "points", {})
    writer = Store(str(tmp_path)).open_version("d", "points", "v1")
    assert writer.write_shard(0, stream.batches(rows=3)) == 8
    written = pq.read_table(writer.shard_path(0))
    assert written.equals(stream.table()) and pq.read_metadata(writer.shard_path(0)).num_row_groups == 3


def test_stats_follow_the_rows_and_a_failed_stream_leaves_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = Store(str(tmp_path)).open_version("d", "points", "v1")
    stream = instantiate_stream(_con(), "points", {"label_rule": "quantile"})
    stats: dict[str, object] = {}

    def counted():  # type: ignore[no-untyped-def]
        yield from stream.batches(rows=3)
        stats.update(stream.stats.result(stream.removed))  # known once the last batch has gone

    assert writer.write_shard(0, counted(), stats) == 4
    written = json.loads((tmp_path / "d" / "points" / "v1" / "part-00000.stats.json").read_text())
    assert written["removed"] == {"quantile_middle": 4} and written["desirable"] == 2

    def failing():  # type: ignore[no-untyped-def]
        yield from instantiate_stream(_con(), "points", {}).batches(rows=3)
        raise QueryError("instantiation of 'points': the query failed midway")

    with pytest.raises(QueryError, match="midway"):
        writer.write_shard(1, failing(), {"rows": 8})
    assert sorted(p.name for p in (tmp_path / "d" / "points" / "v1").iterdir()) == [
        "part-00000.parquet",
        "part-00000.stats.json",
    ]


def test_own_sql_errors_name_it_and_a_closing_semicolon_is_fine() -> None:
    selection = "SELECT * FROM pairs_unfiltered WHERE prompt_id = 'b'; -- one prompt's pairs\n"
    pairs = instantiate_stream(_con(), "pairs", {}, selection_text=selection, selection_file="b.sql")
    assert pairs.table().column("prompt_id").to_pylist() == ["b"]
    with pytest.raises(QueryError, match=r"selection of 'pairs' \(custom selection SQL\): .*no_such_column"):
        instantiate_stream(_con(), "pairs", {}, selection_text="SELECT no_such_column FROM pairs_unfiltered")
    failing = (  # fails as it runs, on one row: the error names the SQL, and nothing is returned
        "SELECT *, CASE WHEN reward < 0.1 THEN error('reward too low') END AS boom"
        " FROM (SELECT 'x' AS point_id, prompt_id, 'p' AS prompt, 'c' AS completion, candidate_id,"
        " score AS reward, true AS label, criterion FROM candidate_scores)"
    )
    stream = instantiate_stream(_con(), "points", {}, failing, sql_file="mine.sql")
    with pytest.raises(QueryError, match=r"instantiation of 'points' \(mine.sql\): .*reward too low"):
        stream.table()
    late = (  # fails on its last row, after many batches have gone (the error then comes through Arrow)
        "SELECT i::VARCHAR AS point_id, 'a' AS prompt_id, 'p' AS prompt, 'c' AS completion,"
        " i::VARCHAR AS candidate_id, 1.0::DOUBLE AS reward, true AS label, 'overall' AS criterion,"
        " CASE WHEN i = 299999 THEN error('the last row is bad') END AS boom FROM range(300000) AS t(i)"
    )
    stream = instantiate_stream(_con(), "points", {}, late, sql_file="late.sql")
    got: list[int] = []
    with pytest.raises(QueryError, match=r"instantiation of 'points' \(late.sql\): .*the last row is bad"):
        got.extend(b.num_rows for b in stream.batches(rows=1000))
    assert sum(got) > 0  # some batches went before the error


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
