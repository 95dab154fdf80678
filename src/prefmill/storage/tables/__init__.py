"""The registry of prefmill tables: one module per table, each declaring ``TABLE = Table(...)``.

Adding a table is adding its module here (plus, for an instantiation output, its built-in SQL file
in ``prefmill/sql``). Everything else that lists tables is built from this registry: ``SCHEMAS`` and
``ID_COLUMNS`` (storage), ``TABLE_ORDER`` (listings, reports), ``OUTPUTS`` (instantiation and the
recipe's ``instantiation.outputs`` / ``sql`` choices) and ``EXPORT_FORMATS`` (exports and the recipe's
``exports[].format`` choices).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace

import pyarrow as pa

from prefmill.storage.tables.base import MESSAGE, ROWS, ExportFormat, Table, column, is_optional


def _discover() -> dict[str, Table]:
    found: list[Table] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        table = getattr(module, "TABLE", None)
        if not isinstance(table, Table) or table.name != info.name:
            raise TypeError(f"{module.__name__} must define TABLE = Table(name={info.name!r}, ...)")
        if table.id_column is not None and table.id_column not in table.schema.names:
            raise TypeError(f"{module.__name__}: id column {table.id_column!r} is not in the schema")
        found.append(replace(table, exports=tuple(replace(f, table=table.name) for f in table.exports)))
    return {t.name: t for t in sorted(found, key=lambda t: (t.order, t.name))}


#: Every table, in stage order.
TABLES: dict[str, Table] = _discover()

#: Table names in stage order (listings and reports sort by it).
TABLE_ORDER: tuple[str, ...] = tuple(TABLES)

#: The declared schema of each table.
SCHEMAS: dict[str, pa.Schema] = {name: t.schema for name, t in TABLES.items()}

#: The id column of each table that has one, used by ``diff`` and de-duplication.
ID_COLUMNS: dict[str, str] = {name: t.id_column for name, t in TABLES.items() if t.id_column}

#: The tables instantiation builds, each from its built-in ``prefmill/sql/<sql>.sql``.
OUTPUTS: tuple[str, ...] = tuple(name for name, t in TABLES.items() if t.sql)


def _formats() -> dict[str, ExportFormat]:
    out: dict[str, ExportFormat] = {}
    for fmt in (*(f for t in TABLES.values() for f in t.exports), ROWS):
        if fmt.name in out:
            raise TypeError(f"export format {fmt.name!r} is declared by two tables")
        out[fmt.name] = fmt
    return out


#: Every export format by name: the ones the table modules declare, then ``rows`` (any table).
EXPORT_FORMATS: dict[str, ExportFormat] = _formats()


def order_key(table: str) -> tuple[int, str]:
    """Sort key of a table name: the registry's stage order, unknown names last by name."""
    return (TABLE_ORDER.index(table) if table in TABLES else len(TABLE_ORDER), table)


__all__ = [
    "EXPORT_FORMATS",
    "ID_COLUMNS",
    "MESSAGE",
    "OUTPUTS",
    "ROWS",
    "SCHEMAS",
    "TABLES",
    "TABLE_ORDER",
    "ExportFormat",
    "Table",
    "column",
    "is_optional",
    "order_key",
]
