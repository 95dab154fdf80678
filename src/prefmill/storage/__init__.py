"""Versioned Parquet tables: the table registry, schemas, manifests, refs, and DuckDB sessions.

``storage`` imports no other part of prefmill (DESIGN §1) except the shared errors and ids.
"""

from prefmill.storage.gc import GcReport
from prefmill.storage.manifest import FileEntry, Manifest, Parent
from prefmill.storage.naming import DEFAULT_REF, check_name, version_id
from prefmill.storage.schemas import conform, empty_table, schema_for
from prefmill.storage.store import Ref, Store
from prefmill.storage.tables import EXPORT_FORMATS, ID_COLUMNS, OUTPUTS, SCHEMAS, TABLE_ORDER, TABLES, Table
from prefmill.storage.writer import VersionWriter

__all__ = [
    "DEFAULT_REF",
    "EXPORT_FORMATS",
    "ID_COLUMNS",
    "OUTPUTS",
    "SCHEMAS",
    "TABLES",
    "TABLE_ORDER",
    "FileEntry",
    "GcReport",
    "Manifest",
    "Parent",
    "Ref",
    "Store",
    "Table",
    "VersionWriter",
    "check_name",
    "conform",
    "empty_table",
    "schema_for",
    "version_id",
]
