"""Table schemas and validation on write (DESIGN §2, §8: every table schema is validated on write)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from tables import TABLES, build, inferred, rows

from prefmill.errors import SchemaError
from prefmill.storage import ID_COLUMNS, SCHEMAS, Store, conform, empty_table, schema_for


def _drop(t: pa.Table, name: str) -> pa.Table:
    return t.drop_columns([name])


def _replace(t: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.column_names.index(name), name, values)


@pytest.mark.parametrize("table", [*TABLES, "prompts_rejected"])
def test_valid_table_conforms_unchanged(table: str) -> None:
    data = build(table)
    out = conform(table, data)
    assert out.schema.equals(SCHEMAS[table])
    assert out.equals(data)


@pytest.mark.parametrize("table", [*TABLES, "prompts_rejected"])
def test_inferred_types_are_cast_to_declared(table: str) -> None:
    data = inferred(table)
    out = conform(table, data)
    assert out.schema.equals(SCHEMAS[table])
    # optional columns the rows leave out come back as nulls
    assert out.to_pylist() == [{**dict.fromkeys(SCHEMAS[table].names), **r} for r in rows(table)]


def test_every_table_has_declared_id_column() -> None:
    assert set(ID_COLUMNS) == set(TABLES)
    for table, column in ID_COLUMNS.items():
        field = SCHEMAS[table].field(column)
        assert field.type == pa.string() and not field.nullable


def test_design_columns_are_declared() -> None:
    # DESIGN §2 key columns; a stage may add columns but never lose these
    assert SCHEMAS["candidates"].names[:3] == ["candidate_id", "prompt_id", "response"]
    assert {"error", "n_tokens", "finish_reason", "logprob", "latency_ms"} <= set(SCHEMAS["candidates"].names)
    assert {"prefers_first", "order", "parse_error", "granularity"} <= set(SCHEMAS["judgments"].names)
    assert SCHEMAS["prompts"].field("messages").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )


def test_missing_column_is_named() -> None:
    data = _drop(build("candidates"), "generator")
    with pytest.raises(SchemaError) as err:
        conform("candidates", data)
    msg = str(err.value)
    assert "table 'candidates'" in msg
    assert "missing column 'generator'" in msg


def test_mistyped_column_is_named() -> None:
    data = build("candidates")
    data = _replace(data, "response", pa.array(range(data.num_rows), pa.int64()))
    with pytest.raises(SchemaError, match=r"column 'response' is int64, expected string"):
        conform("candidates", data)


def test_mistyped_nested_column_is_named() -> None:
    data = build("prompts", 2)
    bad = pa.array([[{"role": "user", "text": "hi"}]] * 2)  # struct without 'content'
    with pytest.raises(SchemaError, match=r"column 'messages' is list<"):
        conform("prompts", _replace(data, "messages", bad))


def test_null_in_non_null_column_is_named_with_first_row() -> None:
    data = build("judgments", 5)
    judges = data.column("judge").to_pylist()
    judges[2] = judges[4] = None
    data = _replace(data, "judge", pa.array(judges, pa.string()))
    with pytest.raises(SchemaError, match=r"column 'judge' has 2 null\(s\), first at row 2"):
        conform("judgments", data)


def test_all_problems_reported_at_once_with_location() -> None:
    data = _drop(build("pairs"), "chosen_id")
    data = _replace(data, "margin", pa.array(["big"] * data.num_rows))
    with pytest.raises(SchemaError) as err:
        conform("pairs", data, where="shard 7")
    msg = str(err.value)
    assert msg.startswith("table 'pairs' (shard 7): ")
    assert "missing column 'chosen_id'" in msg
    assert "column 'margin' is string, expected double" in msg


def test_nullable_columns_accept_nulls() -> None:
    data = build("candidates", 4, errors=4)
    assert data.column("response").null_count == 4
    assert conform("candidates", data).column("error").null_count == 0


def test_safe_cast_large_string() -> None:
    data = build("candidates")
    data = _replace(data, "response", data.column("response").cast(pa.large_string()))
    out = conform("candidates", data)
    assert out.schema.field("response").type == pa.string()
    assert out.column("response").to_pylist() == build("candidates").column("response").to_pylist()


def test_safe_cast_int32_to_int64_and_int64_to_int32() -> None:
    data = build("candidates")
    data = _replace(data, "n_tokens", data.column("n_tokens").cast(pa.int32()))
    data = _replace(data, "sample_index", data.column("sample_index").cast(pa.int64()))
    out = conform("candidates", data)
    assert out.schema.field("n_tokens").type == pa.int64()
    assert out.schema.field("sample_index").type == pa.int32()
    assert out.equals(build("candidates"))


def test_integer_into_double_column() -> None:
    data = build("points", 3)
    data = _replace(data, "reward", pa.array([1, 2, 3], pa.int64()))
    out = conform("points", data)
    assert out.column("reward").to_pylist() == [1.0, 2.0, 3.0]


def test_lossy_integer_cast_is_refused() -> None:
    data = build("candidates", 2)
    data = _replace(data, "sample_index", pa.array([0, 2**40], pa.int64()))
    with pytest.raises(SchemaError, match=r"column 'sample_index' cannot be cast to int32"):
        conform("candidates", data)


def test_all_null_column_takes_declared_type() -> None:
    data = build("judgments", 3)
    data = _replace(data, "rationale", pa.nulls(3))
    data = _replace(data, "unit_index", pa.nulls(3))
    out = conform("judgments", data)
    assert out.schema.field("rationale").type == pa.string()
    assert out.schema.field("unit_index").type == pa.int32()
    assert out.column("rationale").null_count == 3


def test_all_null_column_in_non_null_column_is_refused() -> None:
    data = _replace(build("points", 3), "candidate_id", pa.nulls(3))
    with pytest.raises(SchemaError, match=r"column 'candidate_id' has 3 null\(s\), first at row 0"):
        conform("points", data)


def test_extra_columns_kept_after_declared_ones() -> None:
    base = build("points", 3)
    # extra column first, declared columns shuffled
    data = pa.table(
        {
            "judge_votes": [1, 2, 3],
            **{n: base.column(n) for n in reversed(base.column_names)},
            "note": ["a"] * 3,
        }
    )
    out = conform("points", data)
    assert out.column_names == [*SCHEMAS["points"].names, "judge_votes", "note"]
    assert out.column("judge_votes").to_pylist() == [1, 2, 3]
    assert out.schema.field("judge_votes").type == pa.int64()
    assert out.select(SCHEMAS["points"].names).equals(base)


def test_unknown_table_lists_known_ones() -> None:
    with pytest.raises(SchemaError, match=r"unknown table 'candidate'.*candidates"):
        schema_for("candidate")
    with pytest.raises(SchemaError, match="unknown table"):
        conform("nope", build("points", 1))


def test_empty_table_has_declared_schema() -> None:
    for table in TABLES:
        t = empty_table(table)
        assert t.num_rows == 0 and t.schema.equals(SCHEMAS[table])
        assert conform(table, t).num_rows == 0


def test_store_validates_on_write(tmp_path: Path) -> None:
    store = Store(tmp_path)
    writer = store.open_version("ds", "candidates", "v1")
    with pytest.raises(SchemaError, match=r"table 'candidates' \(shard 3\): missing column 'prompt_id'"):
        writer.write_shard(3, _drop(build("candidates"), "prompt_id"))
    assert writer.finished_shards() == []


def test_optional_columns_are_null_filled_and_required_ones_are_not() -> None:
    data = build("candidates").drop_columns(["policy_logprob", "duplicate_of"])
    out = conform("candidates", data)
    assert out.schema.equals(SCHEMAS["candidates"])
    assert out.column("policy_logprob").null_count == out.num_rows
    assert out.column("duplicate_of").type == pa.string()
    with pytest.raises(SchemaError, match="missing column 'logprob'"):
        conform("candidates", build("candidates").drop_columns(["logprob"]))


def test_candidates_without_parent_id_get_a_null_one() -> None:
    # parent_id came with critique-revise: writers that predate it still conform
    data = build("candidates", 3).drop_columns(["parent_id"])
    out = conform("candidates", data)
    assert out.schema.equals(SCHEMAS["candidates"])
    assert out.column("parent_id").null_count == 3
    with pytest.raises(SchemaError, match="missing column 'error'"):
        conform("candidates", data.drop_columns(["error"]))
