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
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from prefmill.errors import NotFoundError, StorageError
from prefmill.ids import content_id
from prefmill.storage.fs import Location, resolve
from prefmill.storage.manifest import MANIFEST_NAME, FileEntry, Manifest, Parent
from prefmill.storage.schemas import conform

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PART_RE = re.compile(r"^part-(\d{5})\.parquet$")
REFS_DIR = "refs"
DEFAULT_REF = "latest"

#: Columns whose sums become manifest totals when a table has them.
_SUM_COLUMNS = {"n_tokens": "tokens", "prompt_tokens": "prompt_tokens", "cost_usd": "cost_usd"}
_ERROR_COLUMNS = ("error", "parse_error")


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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Ref:
    """A named pointer at table versions, written by a build (``latest`` by default)."""

    name: str
    tables: dict[str, str]
    created_at: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class GcReport:
    """What garbage collection found (and removed, when applied)."""

    dataset: str
    unreferenced: list[tuple[str, str]]
    incomplete: list[tuple[str, str]]
    kept: int
    applied: bool
    bytes: int = 0


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
                "`prefmill tables` lists them"
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
            writer.write_shard(i, data.slice(start, step), stats=stats if i == 0 else None)
        return writer.publish(
            stage=stage, code_version=code_version, config=config, parents=parents, flow_run_id=flow_run_id
        )

    # -- reading -------------------------------------------------------------------------------
    def file_paths(self, m: Manifest) -> list[str]:
        """Full paths of a version's files, including files it borrows from an earlier version."""
        return [f"{self.version_path(m.dataset, m.table, f.version or m.version)}/{f.path}" for f in m.files]

    def arrow_dataset(self, m: Manifest) -> pads.Dataset:
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
        ref = Ref(check_name("ref", name), dict(tables), _now(), dict(info or {}))
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
        seen: dict[tuple[str, str], Manifest] = {}
        frontier = list(m.parents)
        while frontier:
            p = frontier.pop(0)
            key = (p.table, p.version)
            if key in seen:
                continue
            parent = self.find_manifest(m.dataset, p.table, p.version)
            if parent is None:
                continue
            seen[key] = parent
            frontier.extend(parent.parents)
        return list(seen.values())

    def gc(self, dataset: str, *, apply: bool = False, incomplete: bool = False) -> GcReport:
        """Find versions no ref reaches (directly or as an ancestor); delete them when ``apply``.
        Incomplete versions (no manifest) are listed, and deleted only with ``incomplete=True``."""
        reachable: set[tuple[str, str]] = set()
        for ref in self.refs(dataset).values():
            for t, v in ref.tables.items():
                reachable.add((t, v))
                m = self.find_manifest(dataset, t, v)
                if m is not None:
                    reachable.update((a.table, a.version) for a in self.ancestors(m))
        unreferenced, partial, kept, size = [], [], 0, 0
        for table in self.tables(dataset):
            base = self.path(dataset, table)
            for v in self._list_dirs(base):
                if self.find_manifest(dataset, table, v) is None:
                    partial.append((table, v))
                elif (table, v) in reachable:
                    kept += 1
                else:
                    unreferenced.append((table, v))
                    size += sum(f.size or 0 for f in self._list_files(f"{base}/{v}"))
        if apply:
            doomed = unreferenced + (partial if incomplete else [])
            for table, v in doomed:
                # the manifest goes first, so a half-deleted version is never readable
                mpath = f"{self.version_path(dataset, table, v)}/{MANIFEST_NAME}"
                if self._exists(mpath):
                    self.fs.delete_file(mpath)
                self.fs.delete_dir(self.version_path(dataset, table, v))
        return GcReport(dataset, unreferenced, partial, kept, apply, size)


class VersionWriter:
    """Writes the shards of one version and publishes its manifest."""

    def __init__(self, store: Store, dataset: str, table: str, version: str) -> None:
        self.store = store
        self.dataset = check_name("dataset", dataset)
        self.table = check_name("table", table)
        self.version = check_name("version", version)
        self.dir = store.version_path(dataset, table, version)

    def manifest(self) -> Manifest | None:
        return self.store.find_manifest(self.dataset, self.table, self.version)

    @property
    def published(self) -> bool:
        return self.manifest() is not None

    def finished_shards(self) -> list[int]:
        """Indices of the shards already written (a resumed run skips them)."""
        out = []
        for info in self.store._list_files(self.dir):
            match = PART_RE.match(info.base_name)
            if match:
                out.append(int(match.group(1)))
        return sorted(out)

    def shard_path(self, index: int) -> str:
        return f"{self.dir}/part-{index:05d}.parquet"

    def shard_path_of(self, version: str, index: int) -> str:
        return f"{self.store.version_path(self.dataset, self.table, version)}/part-{index:05d}.parquet"

    def write_shard(self, index: int, data: pa.Table, stats: Mapping[str, Any] | None = None) -> int:
        """Validate ``data`` against the table's schema and write it as shard ``index``, atomically.
        ``stats`` (numbers) are kept beside the shard and summed into the manifest at publish."""
        if self.published:
            raise StorageError(f"version {self.table}@{self.version} is published; nothing is overwritten")
        data = conform(self.table, data, where=f"shard {index}")
        fs = self.store.fs
        fs.create_dir(self.dir, recursive=True)
        if stats:
            payload = json.dumps(dict(stats), sort_keys=True).encode()
            self.store._write_atomic(f"{self.dir}/part-{index:05d}.stats.json", payload, replace=True)
        final = self.shard_path(index)
        if self.store.loc.fsspec_fs is not None:  # object store: one conditional PUT, no rename
            buffer = pa.BufferOutputStream()
            pq.write_table(data, buffer)
            self.store._write_atomic(final, buffer.getvalue().to_pybytes(), replace=False)
            return data.num_rows
        tmp = f"{self.dir}/.tmp-{uuid.uuid4().hex}-part-{index:05d}.parquet"
        pq.write_table(data, tmp, filesystem=fs)
        # first writer wins: a racing writer never replaces a shard (or a published version's part)
        self.store._move_into_place(tmp, final, replace=False)
        return data.num_rows

    def _stats(self, index: int) -> dict[str, Any]:
        path = f"{self.dir}/part-{index:05d}.stats.json"
        try:
            return json.loads(self.store._read_text(path))
        except (FileNotFoundError, OSError):
            return {}

    def publish(
        self,
        *,
        stage: str,
        code_version: str,
        config: Mapping[str, Any],
        parents: Iterable[Parent] = (),
        flow_run_id: str | None = None,
        expected_shards: int | None = None,
        extra_stats: Mapping[str, Any] | None = None,
        borrowed: Mapping[int, str] | None = None,
    ) -> Manifest:
        """Write the manifest once every shard is in. Returns the winning manifest if another writer
        published this version first.

        ``borrowed`` maps shard indices to versions of the same table whose shard of that index this
        version takes by reference instead of writing it (a retry keeps the shards that had no failed
        rows); those versions must be among ``parents`` so lineage and gc keep them.
        """
        if (existing := self.manifest()) is not None:
            return existing
        parents = list(parents)
        borrowed = dict(borrowed or {})
        own = set(self.finished_shards())
        unparented = sorted(
            {v for v in borrowed.values()} - {p.version for p in parents if p.table == self.table}
        )
        if unparented:
            raise StorageError(
                f"cannot publish {self.table}@{self.version}: borrowed versions {unparented} are not parents"
            )
        shards = sorted(own | set(borrowed))
        if expected_shards is not None:
            missing = sorted(set(range(expected_shards)) - set(shards))
            if missing:
                raise StorageError(
                    f"cannot publish {self.table}@{self.version}: shards {missing[:10]} are not written"
                )
        if not shards:
            raise StorageError(f"cannot publish {self.table}@{self.version}: no shard was written")
        fs = self.store.fs
        files, totals, stats = [], {"rows": 0, "errors": 0}, {}
        schema: pa.Schema | None = None
        for i in shards:
            source = None if i in own else borrowed[i]
            path = self.shard_path(i) if source is None else self.shard_path_of(source, i)
            meta = pq.read_metadata(path, filesystem=fs)
            schema = schema or meta.schema.to_arrow_schema()
            size = fs.get_file_info(path).size or 0
            files.append(
                FileEntry(path=f"part-{i:05d}.parquet", rows=meta.num_rows, bytes=size, version=source)
            )
            totals["rows"] += meta.num_rows
            names = set(meta.schema.names)
            wanted = [c for c in (*_SUM_COLUMNS, *_ERROR_COLUMNS) if c in names]
            if wanted and meta.num_rows:
                cols = pq.read_table(path, filesystem=fs, columns=wanted)
                for c in wanted:
                    if c in _SUM_COLUMNS:
                        key = _SUM_COLUMNS[c]
                        value = pc.sum(cols.column(c)).as_py() or 0
                        totals[key] = totals.get(key, 0) + value
                    else:
                        totals["errors"] += cols.num_rows - cols.column(c).null_count
            for k, v in (self._stats(i) if source is None else {}).items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    stats[k] = stats.get(k, 0) + v
                else:
                    stats[k] = v
        stats.update(extra_stats or {})
        assert schema is not None
        manifest = Manifest(
            dataset=self.dataset,
            table=self.table,
            version=self.version,
            stage=stage,
            code_version=code_version,
            config=dict(config),
            parents=parents,
            schema=[{"name": f.name, "type": str(f.type)} for f in schema],
            files=files,
            totals=totals,
            stats=stats,
            flow_run_id=flow_run_id,
            created_at=_now(),
        )
        won = self.store._write_atomic(
            f"{self.dir}/{MANIFEST_NAME}", manifest.to_json().encode(), replace=False
        )
        return manifest if won else self.manifest()  # type: ignore[return-value]
