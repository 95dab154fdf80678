"""The read side of a table store: paths, published versions, manifests and refs (DESIGN §3).

A version without a manifest does not exist for readers. ``Catalog`` reads; ``prefmill.storage.store.
Store`` builds on it to write versions and refs and to read table data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from prefmill.errors import NotFoundError, StorageError
from prefmill.storage.fs import Location, resolve
from prefmill.storage.hints import command
from prefmill.storage.manifest import MANIFEST_NAME, Manifest
from prefmill.storage.naming import DEFAULT_REF, NAME_RE, REFS_DIR, check_name


@dataclass
class Ref:
    """A named pointer at table versions, written by a build (``latest`` by default)."""

    name: str
    tables: dict[str, str]
    created_at: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Catalog:
    """The read-only view of a store: where things are, which versions are published, the refs.

    The store's other layers (the version writer, build leases, gc) work against this, and ``Store``
    adds writing and reading data on top of it."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.loc: Location = resolve(root)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.loc.uri

    @property
    def fs(self) -> pafs.FileSystem:
        return self.loc.fs

    def path(self, *parts: str) -> str:
        return self.loc.join(*parts)

    def version_path(self, dataset: str, table: str, version: str) -> str:
        return self.path(
            check_name("dataset", dataset), check_name("table", table), check_name("version", version)
        )

    # -- listing -------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return [d for d in self.loc.list_dirs(self.loc.base) if NAME_RE.match(d)]

    def tables(self, dataset: str) -> list[str]:
        path = self.path(check_name("dataset", dataset))
        return [t for t in self.loc.list_dirs(path) if t != REFS_DIR and NAME_RE.match(t)]

    def find_manifest(self, dataset: str, table: str, version: str) -> Manifest | None:
        path = f"{self.version_path(dataset, table, version)}/{MANIFEST_NAME}"
        try:
            return Manifest.from_json(self.loc.read_text(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if not self.loc.exists(path):
                return None
            raise StorageError(f"cannot read {path}: {exc}") from exc

    def manifest(self, dataset: str, table: str, version: str) -> Manifest:
        found = self.find_manifest(dataset, table, version)
        if found is None:
            raise NotFoundError(f"no published version '{version}' of table '{table}' in dataset '{dataset}'")
        return found

    def versions(self, dataset: str, table: str) -> list[Manifest]:
        """Published versions of a table, oldest first."""
        out = []
        for v in self.loc.list_dirs(self.path(check_name("dataset", dataset), check_name("table", table))):
            m = self.find_manifest(dataset, table, v)
            if m is not None:
                out.append(m)
        return sorted(out, key=lambda m: m.created_at)

    def incomplete_versions(self, dataset: str, table: str) -> list[str]:
        """Version folders with shards but no manifest (a build in progress or one that crashed)."""
        base = self.path(check_name("dataset", dataset), check_name("table", table))
        return [v for v in self.loc.list_dirs(base) if self.find_manifest(dataset, table, v) is None]

    def resolve_version(
        self, dataset: str, table: str, version: str | None = None, ref: str = DEFAULT_REF
    ) -> Manifest:
        """A version by id or unique id prefix; with no version, the one ``ref`` points at."""
        check_name("table", table)
        if dataset not in self.datasets():
            known = ", ".join(self.datasets()) or "none"
            raise NotFoundError(f"no dataset '{dataset}' under {self.root} (datasets: {known})")
        if table not in self.tables(dataset):
            known = ", ".join(self.tables(dataset)) or "none"
            raise NotFoundError(f"no table '{table}' in dataset '{dataset}' (tables: {known})")
        if version is None:
            r = self.read_ref(dataset, ref)
            if table not in r.tables:
                raise NotFoundError(
                    f"ref '{ref}' of dataset '{dataset}' has no table '{table}' "
                    f"(it has: {', '.join(r.tables) or 'none'}); name a version as {table}@VERSION"
                )
            return self.manifest(dataset, table, r.tables[table])
        matches = [m for m in self.versions(dataset, table) if m.version.startswith(version)]
        if not matches:
            raise NotFoundError(
                f"no published version '{version}' of table '{table}' in dataset '{dataset}'; "
                f"`{command('tables', root=self.root, dataset=dataset)}` lists them"
            )
        if len(matches) > 1:
            ids = ", ".join(m.version for m in matches)
            raise NotFoundError(f"version prefix '{version}' of table '{table}' is ambiguous: {ids}")
        return matches[0]

    # -- refs ----------------------------------------------------------------------------------
    def read_ref(self, dataset: str, name: str = DEFAULT_REF) -> Ref:
        path = self.path(check_name("dataset", dataset), REFS_DIR, f"{check_name('ref', name)}.json")
        try:
            return Ref(**json.loads(self.loc.read_text(path)))
        except (FileNotFoundError, OSError):
            if self.loc.exists(path):
                raise
            known = ", ".join(self.refs(dataset)) or "none"
            raise NotFoundError(f"no ref '{name}' in dataset '{dataset}' (refs: {known})") from None

    def refs(self, dataset: str) -> dict[str, Ref]:
        path = self.path(check_name("dataset", dataset), REFS_DIR)
        out = {}
        for info in self.loc.list_files(path):
            if info.base_name.endswith(".json") and not info.base_name.startswith("."):
                name = info.base_name[: -len(".json")]
                out[name] = self.read_ref(dataset, name)
        return dict(sorted(out.items()))
