"""The ``_manifest.json`` of a table version: what the version is, where its rows are, how it was made."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 1
MANIFEST_NAME = "_manifest.json"


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the folder of ``version`` (this version's folder when None)
    rows: int
    bytes: int
    version: str | None = None  # set when the file is borrowed, by reference, from another version


@dataclass(frozen=True)
class Parent:
    table: str
    version: str


@dataclass
class Manifest:
    dataset: str
    table: str
    version: str
    stage: str
    code_version: str
    config: dict[str, Any]
    parents: list[Parent]
    schema: list[dict[str, str]]
    files: list[FileEntry]
    totals: dict[str, float | int]
    stats: dict[str, Any] = field(default_factory=dict)
    flow_run_id: str | None = None
    created_at: str = ""
    format: int = FORMAT

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["parents"] = [Parent(**p) for p in data.get("parents", [])]
        data["files"] = [FileEntry(**f) for f in data.get("files", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})
