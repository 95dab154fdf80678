"""Arrow schemas of the prefmill tables (DESIGN §2) and validation on write.

Column names are fixed here; a stage may add columns after the declared ones. ``conform`` checks a
table against its schema, casts the safe differences (large_string -> string, int32 -> int64,
decimal -> double, an all-null column -> the declared type) and raises ``SchemaError`` naming every
missing or mistyped column. Columns declared *optional* (added to a table after its first release) are
filled with nulls when a producer leaves them out, so older producers keep conforming.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.errors import SchemaError

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])


_OPTIONAL = {b"optional": b"1"}


def _f(name: str, typ: pa.DataType, nullable: bool = True, *, optional: bool = False) -> pa.Field:
    """A column; ``optional`` ones (always nullable) are null-filled by ``conform`` when absent."""
    return pa.field(name, typ, nullable=nullable or optional, metadata=_OPTIONAL if optional else None)


def is_optional(field: pa.Field) -> bool:
    """Whether ``conform`` fills this declared column with nulls when a table lacks it."""
    return bool(field.metadata) and field.metadata.get(b"optional") == b"1"


SCHEMAS: dict[str, pa.Schema] = {
    "prompts": pa.schema(
        [
            _f("prompt_id", pa.string(), False),
            _f("messages", pa.list_(MESSAGE), False),
            _f("source", pa.string(), False),
            _f("reference", pa.string()),
            _f("rubric", pa.string()),
            _f("meta", pa.string()),
        ]
    ),
    "prompts_rejected": pa.schema(
        [
            _f("source", pa.string(), False),
            _f("location", pa.string(), False),
            _f("reason", pa.string(), False),
            _f("raw", pa.string()),
        ]
    ),
    "candidates": pa.schema(
        [
            _f("candidate_id", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("response", pa.string()),
            _f("generator", pa.string(), False),
            _f("origin", pa.string(), False),
            _f("sampling", pa.string()),
            _f("sample_index", pa.int32(), False),
            _f("n_tokens", pa.int64()),
            _f("prompt_tokens", pa.int64()),
            _f("finish_reason", pa.string()),
            _f("logprob", pa.float64()),
            _f("latency_ms", pa.float64()),
            _f("error", pa.string()),
            # Synthesis strategies (issue 3); optional: producers that predate them get nulls.
            _f("policy", pa.string(), optional=True),
            _f("strategy", pa.string(), optional=True),
            _f("policy_logprob", pa.float64(), optional=True),
            _f("rating", pa.float64(), optional=True),
            _f("stated_probability", pa.float64(), optional=True),
            _f("accepted", pa.bool_(), optional=True),
            _f("attempts", pa.int32(), optional=True),
            _f("duplicate_of", pa.string(), optional=True),
            _f("raw", pa.string(), optional=True),
            _f("parent_id", pa.string(), optional=True),  # critique-revise: the revised candidate
            _f("cost_usd", pa.float64(), optional=True),  # openai engines with a recipe price
        ]
    ),
    "judgments": pa.schema(
        [
            _f("judgment_id", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("candidate_id", pa.string(), False),
            _f("other_candidate_id", pa.string()),
            _f("judge", pa.string(), False),
            _f("kind", pa.string(), False),
            _f("mode", pa.string(), False),
            _f("criterion", pa.string(), False),
            _f("granularity", pa.string(), False),
            _f("unit_index", pa.int32()),
            _f("order", pa.string()),
            _f("score", pa.float64()),
            _f("prefers_first", pa.float64()),
            _f("rationale", pa.string()),
            _f("raw", pa.string()),
            _f("parse_error", pa.string()),
        ]
    ),
    "pairs": pa.schema(
        [
            _f("pair_id", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("prompt", pa.string()),
            _f("chosen", pa.string()),
            _f("rejected", pa.string()),
            _f("chosen_id", pa.string(), False),
            _f("rejected_id", pa.string(), False),
            _f("chosen_score", pa.float64()),
            _f("rejected_score", pa.float64()),
            _f("margin", pa.float64()),
            _f("soft_label", pa.float64()),
            _f("uncertainty", pa.float64()),
            _f("criterion", pa.string()),
            _f("weight", pa.float64()),
            _f("strategy", pa.string()),
        ]
    ),
    "points": pa.schema(
        [
            _f("point_id", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("prompt", pa.string()),
            _f("completion", pa.string()),
            _f("candidate_id", pa.string(), False),
            _f("reward", pa.float64()),
            _f("label", pa.bool_()),
            _f("criterion", pa.string()),
        ]
    ),
    "lists": pa.schema(
        [
            _f("list_id", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("prompt", pa.string()),
            _f("candidate_ids", pa.list_(pa.string())),
            _f("completions", pa.list_(pa.string())),
            _f("scores", pa.list_(pa.float64())),
            _f("ranks", pa.list_(pa.int32())),
            _f("advantages", pa.list_(pa.float64())),
        ]
    ),
    # written by `prefmill train`: one row per trained checkpoint (the model folder is at `path`)
    "checkpoints": pa.schema(
        [
            _f("checkpoint_id", pa.string(), False),
            _f("method", pa.string(), False),
            _f("base_model", pa.string(), False),
            _f("path", pa.string(), False),
            _f("model_class", pa.string()),
            _f("train_table", pa.string(), False),
            _f("train_version", pa.string(), False),
            _f("train_rows", pa.int64()),
            _f("steps", pa.int64()),
            _f("train_loss", pa.float64()),
            _f("losses", pa.list_(pa.float64())),
            _f("seconds", pa.float64()),
            _f("trl_version", pa.string()),
            _f("eval_n", pa.int64()),
            _f("accuracy_before", pa.float64()),
            _f("accuracy_after", pa.float64()),
        ]
    ),
    # written by `prefmill train`: held-out answers of the model before and after training, verified
    "train_eval": pa.schema(
        [
            _f("phase", pa.string(), False),
            _f("model", pa.string(), False),
            _f("prompt_id", pa.string(), False),
            _f("prompt", pa.string()),
            _f("reference", pa.string()),
            _f("response", pa.string()),
            _f("extracted", pa.string()),
            _f("score", pa.float64()),
            _f("n_tokens", pa.int64()),
            _f("error", pa.string()),
        ]
    ),
}

#: Nullable columns added after a table's first release: ``conform`` fills them with nulls when a
#: writer does not set them (candidates.parent_id is set only on revisions).
FILLED_WHEN_MISSING: dict[str, frozenset[str]] = {"candidates": frozenset({"parent_id"})}

#: The id column of each table, used by ``diff`` and de-duplication.
ID_COLUMNS: dict[str, str] = {
    "prompts": "prompt_id",
    "candidates": "candidate_id",
    "judgments": "judgment_id",
    "pairs": "pair_id",
    "points": "point_id",
    "lists": "list_id",
}

_STRINGS = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
_LISTS = (pa.types.is_list, pa.types.is_large_list, pa.types.is_list_view, pa.types.is_large_list_view)


def schema_for(table: str) -> pa.Schema:
    """The declared schema of ``table``; unknown names raise ``SchemaError`` listing the known ones."""
    try:
        return SCHEMAS[table]
    except KeyError:
        raise SchemaError(f"unknown table '{table}': known tables are {', '.join(SCHEMAS)}") from None


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual.equals(expected) or pa.types.is_null(actual):
        return True
    if any(t(expected) for t in _STRINGS):
        return any(t(actual) for t in _STRINGS)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual) or pa.types.is_decimal(actual)
    if any(t(expected) for t in _LISTS):
        return any(t(actual) for t in _LISTS) and _compatible(actual.value_type, expected.value_type)
    if pa.types.is_struct(expected):
        if not pa.types.is_struct(actual):
            return False
        names = {actual.field(i).name: actual.field(i).type for i in range(actual.num_fields)}
        return all(
            expected.field(i).name in names
            and _compatible(names[expected.field(i).name], expected.field(i).type)
            for i in range(expected.num_fields)
        )
    return False


def conform(table_name: str, data: pa.Table, *, where: str | None = None) -> pa.Table:
    """Check ``data`` against the schema of ``table_name`` and return it cast to that schema.

    Declared columns come first in declared order; extra columns follow unchanged. Every problem is
    collected and raised at once as a ``SchemaError`` that names the table, the column and the fix.
    """
    schema = schema_for(table_name)
    label = f"table '{table_name}'" + (f" ({where})" if where else "")
    problems: list[str] = []
    columns: list[pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for field in schema:
        if field.name not in data.column_names and field.name in FILLED_WHEN_MISSING.get(table_name, ()):
            data = data.append_column(field.name, pa.nulls(data.num_rows, field.type))
        if field.name not in data.column_names:
            if is_optional(field):
                columns.append(pa.chunked_array([pa.nulls(data.num_rows, field.type)]))
                fields.append(field)
                continue
            problems.append(f"missing column '{field.name}' ({field.type})")
            continue
        col = data.column(field.name)
        if not _compatible(col.type, field.type):
            problems.append(f"column '{field.name}' is {col.type}, expected {field.type}")
            continue
        if not col.type.equals(field.type):
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                problems.append(f"column '{field.name}' cannot be cast to {field.type}: {exc}")
                continue
        if not field.nullable and col.null_count:
            first = pc.index(pc.is_null(col), True).as_py()
            problems.append(f"column '{field.name}' has {col.null_count} null(s), first at row {first}")
            continue
        columns.append(col)
        fields.append(field)
    if problems:
        raise SchemaError(f"{label}: " + "; ".join(problems))
    declared = set(schema.names)
    for name in data.column_names:
        if name not in declared:
            columns.append(data.column(name))
            fields.append(data.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def empty_table(table_name: str) -> pa.Table:
    """A zero-row table with the declared schema."""
    return schema_for(table_name).empty_table()
