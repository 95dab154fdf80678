"""Versioned Parquet tables: schemas, manifests, refs, and DuckDB sessions over them.

``storage`` imports no other part of prefmill (DESIGN §1) except the shared errors and ids.
"""

from prefmill.storage.manifest import FileEntry, Manifest, Parent
from prefmill.storage.schemas import ID_COLUMNS, SCHEMAS, conform, empty_table, schema_for
from prefmill.storage.store import DEFAULT_REF, GcReport, Ref, Store, VersionWriter, check_name, version_id

__all__ = [
    "DEFAULT_REF",
    "ID_COLUMNS",
    "SCHEMAS",
    "FileEntry",
    "GcReport",
    "Manifest",
    "Parent",
    "Ref",
    "Store",
    "VersionWriter",
    "check_name",
    "conform",
    "empty_table",
    "schema_for",
    "version_id",
]
