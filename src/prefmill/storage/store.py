"""Versioned Parquet tables (DESIGN §3).

Layout::

    <root>/<dataset>/<table>/<version>/part-00000.parquet ... _manifest.json
    <root>/<dataset>/refs/<name>.json

A version id is a content hash of (table, stage, code version, stage config, parent versions). Shards
are written atomically (temporary name, then rename; on an object store one conditional PUT); the
manifest is written last and atomically, and a version without a manifest does not exist for
readers. Published versions are never overwritten: when two writers race to publish the same version,
the first manifest stays and the second writer returns it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from prefmill.errors import NotFoundError, StorageError
from prefmill.storage.fs import Location, resolve
from prefmill.storage.gc import GcReport, ancestors, gc
from prefmill.storage.hints import command
from prefmill.storage.manifest import MANIFEST_NAME, Manifest, Parent
from prefmill.storage.naming import DEFAULT_REF, NAME_RE, REFS_DIR, check_name, now, version_id
from prefmill.storage.writer import VersionWriter

if TYPE_CHECKING:
    import pyarrow.dataset as pads

__all__ = ["DEFAULT_REF", "GcReport", "Ref", "Store", "VersionWriter", "check_name", "version_id"]


@dataclass
class Ref:
    """A named pointer at table versions, written by a build (``latest`` by default)."""

    name: str
    tables: dict[str, str]
    created_at: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Store:
    """A table store at a root (local folder or filesystem URI)."""

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

    def _exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def _list_dirs(self, path: str) -> list[str]:
        info = self.fs.get_file_info(path)
        if info.type != pafs.FileType.Directory:
            return []
        entries = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(e.base_name for e in entries if e.type == pafs.FileType.Directory)

    def _list_files(self, path: str) -> list[pafs.FileInfo]:
        entries = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return [e for e in entries if e.type == pafs.FileType.File]

    def _read_text(self, path: str) -> str:
        with self.fs.open_input_stream(path) as f:
            return f.read().decode("utf-8")

    def _write_atomic(self, path: str, payload: bytes, *, replace: bool) -> bool:
        """Write bytes under a temporary name, then move into place. Returns False when ``replace`` is
        off and the target already existed (the existing file is kept).

        On an object store (a root opened through fsspec) there is no rename: one PUT is already
        atomic (readers see the whole object or none), and with ``replace`` off it is a conditional
        create (``If-None-Match: *`` on S3), so the first writer wins there too."""
        ffs = self.loc.fsspec_fs
        if ffs is not None:
            try:
                ffs.pipe_file(path, payload, mode="overwrite" if replace else "create")
            except FileExistsError:
                return False
            return True
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{name}"
        with self.fs.open_output_stream(tmp) as out:
            out.write(payload)
        return self._move_into_place(tmp, path, replace=replace)

    def _move_into_place(self, tmp: str, path: str, *, replace: bool) -> bool:
        if self.loc.is_local:
            if replace:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)  # fails if the target exists: first writer wins, atomically
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        if not replace and self._exists(path):
            self.fs.delete_file(tmp)
            return False
        self.fs.move(tmp, path)
        return True

    # -- listing -------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return [d for d in self._list_dirs(self.loc.base) if NAME_RE.match(d)]

    def tables(self, dataset: str) -> list[str]:
        path = self.path(check_name("dataset", dataset))
        return [t for t in self._list_dirs(path) if t != REFS_DIR and NAME_RE.match(t)]

    def find_manifest(self, dataset: str, table: str, version: str) -> Manifest | None:
        path = f"{self.version_path(dataset, table, version)}/{MANIFEST_NAME}"
        try:
            return Manifest.from_json(self._read_text(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if not self._exists(path):
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
        for v in self._list_dirs(self.path(check_name("dataset", dataset), check_name("table", table))):
            m = self.find_manifest(dataset, table, v)
            if m is not None:
                out.append(m)
        return sorted(out, key=lambda m: m.created_at)

    def incomplete_versions(self, dataset: str, table: str) -> list[str]:
        """Version folders with shards but no manifest (a build in progress or one that crashed)."""
        base = self.path(check_name("dataset", dataset), check_name("table", table))
        return [v for v in self._list_dirs(base) if self.find_manifest(dataset, table, v) is None]

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

    # -- writing -------------------------------------------------------------------------------
    def open_version(self, dataset: str, table: str, version: str) -> VersionWriter:
        return VersionWriter(self, dataset, table, version)

    def write_version(
        self,
        dataset: str,
        table: str,
        data: pa.Table,
        *,
        stage: str,
        code_version: str,
        config: Mapping[str, Any],
        parents: Iterable[Parent] = (),
        shard_rows: int | None = None,
        flow_run_id: str | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> Manifest:
        """Write a whole table as one version (split in shards of ``shard_rows``) and publish it.
        Returns the existing manifest when this version was published before."""
        parents = list(parents)
        vid = version_id(table, stage, code_version, config, parents)
        writer = self.open_version(dataset, table, vid)
        if (existing := writer.manifest()) is not None:
            return existing
        step = shard_rows or max(data.num_rows, 1)
        for i, start in enumerate(range(0, max(data.num_rows, 1), step)):
            try:
                writer.write_shard(i, data.slice(start, step), stats=stats if i == 0 else None)
            except StorageError:
                if (existing := writer.manifest()) is None:
                    raise
                return existing  # another writer published the same version meanwhile: it wins
        return writer.publish(
            stage=stage, code_version=code_version, config=config, parents=parents, flow_run_id=flow_run_id
        )

    # -- reading -------------------------------------------------------------------------------
    def file_paths(self, m: Manifest) -> list[str]:
        """Full paths of a version's files, including files it borrows from an earlier version."""
        return [f"{self.version_path(m.dataset, m.table, f.version or m.version)}/{f.path}" for f in m.files]

    def arrow_dataset(self, m: Manifest) -> pads.Dataset:
        import pyarrow.dataset as pads  # imports pandas: not on the unchanged-rerun path

        return pads.dataset(self.file_paths(m), filesystem=self.fs, format="parquet")

    def read_arrow(self, m: Manifest, columns: list[str] | None = None) -> pa.Table:
        paths = self.file_paths(m)
        if not paths:
            raise StorageError(f"version {m.table}@{m.version} lists no files")
        tables = [pq.read_table(p, filesystem=self.fs, columns=columns) for p in paths]
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    def read_polars(self, m: Manifest, columns: list[str] | None = None) -> Any:
        import polars as pl

        return pl.from_arrow(self.read_arrow(m, columns))

    def read(self, dataset: str, table: str, version: str | None = None, ref: str = DEFAULT_REF) -> pa.Table:
        return self.read_arrow(self.resolve_version(dataset, table, version, ref))

    # -- refs ----------------------------------------------------------------------------------
    def write_ref(
        self, dataset: str, name: str, tables: Mapping[str, str], info: Mapping[str, Any] | None = None
    ) -> Ref:
        for t, v in tables.items():
            self.manifest(dataset, t, v)  # a ref may only point at published versions
        ref = Ref(check_name("ref", name), dict(tables), now(), dict(info or {}))
        path = self.path(check_name("dataset", dataset), REFS_DIR, f"{name}.json")
        self.fs.create_dir(self.path(dataset, REFS_DIR), recursive=True)
        payload = json.dumps(ref.__dict__, indent=2, sort_keys=True).encode()
        self._write_atomic(path, payload, replace=True)
        return ref

    def read_ref(self, dataset: str, name: str = DEFAULT_REF) -> Ref:
        path = self.path(check_name("dataset", dataset), REFS_DIR, f"{check_name('ref', name)}.json")
        try:
            return Ref(**json.loads(self._read_text(path)))
        except (FileNotFoundError, OSError):
            if self._exists(path):
                raise
            known = ", ".join(self.refs(dataset)) or "none"
            raise NotFoundError(f"no ref '{name}' in dataset '{dataset}' (refs: {known})") from None

    def refs(self, dataset: str) -> dict[str, Ref]:
        path = self.path(check_name("dataset", dataset), REFS_DIR)
        out = {}
        for info in self._list_files(path):
            if info.base_name.endswith(".json") and not info.base_name.startswith("."):
                name = info.base_name[: -len(".json")]
                out[name] = self.read_ref(dataset, name)
        return dict(sorted(out.items()))

    # -- lineage and garbage collection --------------------------------------------------------
    def ancestors(self, m: Manifest) -> list[Manifest]:
        """Every version ``m`` was made from, transitively, nearest first, each once."""
        return ancestors(self, m)

    def gc(self, dataset: str, *, apply: bool = False, incomplete: bool = False) -> GcReport:
        """Find versions no ref reaches (directly or as an ancestor); delete them when ``apply``.
        Incomplete versions (no manifest) are listed, and deleted only with ``incomplete=True``."""
        return gc(self, dataset, apply=apply, incomplete=incomplete)
