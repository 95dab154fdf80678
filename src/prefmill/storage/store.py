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
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import StorageError
from prefmill.storage.catalog import Catalog, Ref
from prefmill.storage.gc import GcReport, ancestors, gc
from prefmill.storage.manifest import Manifest, Parent
from prefmill.storage.naming import DEFAULT_REF, REFS_DIR, check_name, now, version_id
from prefmill.storage.writer import VersionWriter

if TYPE_CHECKING:
    import pyarrow.dataset as pads

__all__ = [
    "DEFAULT_REF",
    "Catalog",
    "GcReport",
    "Ref",
    "Store",
    "VersionWriter",
    "check_name",
    "version_id",
]


class Store(Catalog):
    """A table store at a root (local folder or filesystem URI): the catalog, plus writing versions
    and refs, reading table data, lineage and garbage collection."""

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
        row_group_rows: int | None = None,
    ) -> Manifest:
        """Write a whole table as one version (split in shards of ``shard_rows``, each in Parquet row
        groups of ``row_group_rows``) and publish it. Returns the existing manifest when this
        version was published before."""
        parents = list(parents)
        vid = version_id(table, stage, code_version, config, parents)
        writer = self.open_version(dataset, table, vid)
        if (existing := writer.manifest()) is not None:
            return existing
        step = shard_rows or max(data.num_rows, 1)
        for i, start in enumerate(range(0, max(data.num_rows, 1), step)):
            try:
                part = data.slice(start, step)
                writer.write_shard(i, part, stats=stats if i == 0 else None, row_group_rows=row_group_rows)
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

    def read_rows(self, m: Manifest, start: int, length: int, columns: list[str] | None = None) -> pa.Table:
        """Rows ``[start, start + length)`` of ``m`` (as ``read_arrow(m).slice(start, length)``),
        reading only the files that hold them (the manifest counts each file's rows) and, in each,
        only the row groups that hold them."""
        paths = self.file_paths(m)
        if not paths:
            raise StorageError(f"version {m.table}@{m.version} lists no files")
        tables, offset, end = [], 0, start + length
        for f, path in zip(m.files, paths, strict=True):
            if offset < end and offset + f.rows > start:
                first = max(start - offset, 0)
                tables.append(_read_slice(path, self.fs, first, end - offset - first, columns))
            offset += f.rows
        if not tables:  # past the end: an empty table with the version's columns
            return pq.read_table(paths[0], filesystem=self.fs, columns=columns).slice(0, 0)
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
        self.loc.write_atomic(path, payload, replace=True)
        return ref

    # -- lineage and garbage collection --------------------------------------------------------
    def ancestors(self, m: Manifest) -> list[Manifest]:
        """Every version ``m`` was made from, transitively, nearest first, each once."""
        return ancestors(self, m)

    def gc(self, dataset: str, *, apply: bool = False, incomplete: bool = False) -> GcReport:
        """Find versions no ref reaches (directly or as an ancestor); delete them when ``apply``.
        Incomplete versions (no manifest) are listed, and deleted only with ``incomplete=True``."""
        return gc(self, dataset, apply=apply, incomplete=incomplete)


def _read_slice(path: str, fs: Any, start: int, length: int, columns: list[str] | None) -> pa.Table:
    """Rows ``[start, start + length)`` of one Parquet file, decoding only the row groups that hold
    them."""
    with fs.open_input_file(path) as source:
        pf = pq.ParquetFile(source)
        groups, skipped, offset, end = [], 0, 0, start + length
        for g in range(pf.metadata.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            if offset < end and offset + rows > start:
                groups.append(g)
            elif offset + rows <= start:
                skipped += rows
            offset += rows
        if not groups:  # the manifest's row count disagrees with the file: read it whole
            return pf.read(columns=columns).slice(start, length)
        part = pf.read_row_groups(groups, columns=columns)
    return part.slice(start - skipped, length)
