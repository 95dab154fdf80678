"""Synthetic rows in a table's declared schema, for the benchmarks that write tables of their own.

A benchmark names the columns it fills; every other column of the schema is null. The rows are built
from ``prefmill.storage.SCHEMAS``, so a column added to a table later needs no change in a benchmark
unless the column is required (then the benchmark stops and names it).
"""

from __future__ import annotations

import pyarrow as pa


def from_schema(table: str, n: int, columns: dict[str, pa.Array]) -> pa.Table:
    """``n`` rows of ``table``: the given columns cast to their declared types, the rest null."""
    from prefmill.storage import SCHEMAS

    schema = SCHEMAS[table]
    unknown = sorted(set(columns) - set(schema.names))
    if unknown:
        raise SystemExit(f"benchmark data: {table} has no column(s) {', '.join(unknown)}")
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(columns[field.name].cast(field.type))
        elif field.nullable:
            arrays.append(pa.nulls(n, field.type))
        else:
            raise SystemExit(f"benchmark data: required {table} column {field.name!r} is not filled in")
    return pa.Table.from_arrays(arrays, schema=schema)
