"""Validation on write against the Arrow schemas of the prefmill tables (DESIGN §2).

Each table's columns are declared in its module of ``prefmill.storage.tables``; a stage may add
columns after the declared ones. ``conform`` checks a table against its schema, casts the safe
differences (large_string -> string, int32 -> int64, decimal -> double, an all-null column -> the
declared type) and raises ``SchemaError`` naming every missing or mistyped column. Columns declared
*optional* (added to a table after its first release) are filled with nulls when a producer leaves
them out, so older producers keep conforming.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.errors import SchemaError
from prefmill.storage.tables import ID_COLUMNS, MESSAGE, SCHEMAS, is_optional

__all__ = ["ID_COLUMNS", "MESSAGE", "SCHEMAS", "conform", "empty_table", "is_optional", "schema_for"]

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
