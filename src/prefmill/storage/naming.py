"""Names and ids of the store: allowed dataset/table/version/ref names, version ids, constants."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prefmill.errors import StorageError
from prefmill.ids import content_id
from prefmill.storage.manifest import Parent

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PART_RE = re.compile(r"^part-(\d{5})\.parquet$")
REFS_DIR = "refs"
DEFAULT_REF = "latest"


def check_name(kind: str, name: str) -> str:
    """Reject names that could escape the store or break paths (``..``, ``/``, empty, odd characters)."""
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise StorageError(
            f"{kind} name {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, with no '/' and no '..'"
        )
    return name


def version_id(
    table: str, stage: str, code_version: str, config: Mapping[str, Any], parents: Iterable[Parent]
) -> str:
    """The content-addressed id of a table version."""
    return content_id(
        {
            "table": table,
            "stage": stage,
            "code_version": code_version,
            "config": config,
            "parents": sorted([p.table, p.version] for p in parents),
        }
    )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
