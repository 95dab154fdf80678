"""Lineage and garbage collection over a store's versions and refs."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefmill.storage.catalog import Catalog
from prefmill.storage.lock import clear_dead, live_leases
from prefmill.storage.manifest import MANIFEST_NAME, Manifest


@dataclass
class GcReport:
    """What garbage collection found (and removed, when applied)."""

    dataset: str
    unreferenced: list[tuple[str, str]]
    incomplete: list[tuple[str, str]]
    kept: int
    applied: bool
    bytes: int = 0
    #: versions running builds use (published or in progress): kept whatever the refs say
    live: list[tuple[str, str]] = field(default_factory=list)
    #: how many builds of the dataset are running
    builds: int = 0


def ancestors(store: Catalog, m: Manifest) -> list[Manifest]:
    """Every version ``m`` was made from, transitively, nearest first, each once."""
    seen: dict[tuple[str, str], Manifest] = {}
    frontier = list(m.parents)
    while frontier:
        p = frontier.pop(0)
        key = (p.table, p.version)
        if key in seen:
            continue
        parent = store.find_manifest(m.dataset, p.table, p.version)
        if parent is None:
            continue
        seen[key] = parent
        frontier.extend(parent.parents)
    return list(seen.values())


def _in_use(store: Catalog, dataset: str) -> tuple[set[tuple[str, str]], int]:
    """Versions live builds use (their leases), with their ancestors; and how many builds run."""
    running = live_leases(store, dataset)
    used: set[tuple[str, str]] = set()
    for lease in running:
        for t, v in lease.versions:
            used.add((t, v))
            m = store.find_manifest(dataset, t, v)
            if m is not None:
                used.update((a.table, a.version) for a in ancestors(store, m))
    return used, len(running)


def gc(store: Catalog, dataset: str, *, apply: bool = False, incomplete: bool = False) -> GcReport:
    """Find versions no ref reaches (directly or as an ancestor); delete them when ``apply``.
    Incomplete versions (no manifest) are listed, and deleted only with ``incomplete=True``.
    Versions a running build uses (its lease names them, published or in progress) are never
    deleted: they are reported as ``live``."""
    reachable: set[tuple[str, str]] = set()
    for ref in store.refs(dataset).values():
        for t, v in ref.tables.items():
            reachable.add((t, v))
            m = store.find_manifest(dataset, t, v)
            if m is not None:
                reachable.update((a.table, a.version) for a in ancestors(store, m))
    used, builds = _in_use(store, dataset)
    unreferenced, partial, live, kept, size = [], [], [], 0, 0
    for table in store.tables(dataset):
        base = store.path(dataset, table)
        for v in store.loc.list_dirs(base):
            if (table, v) in used:
                live.append((table, v))
            elif store.find_manifest(dataset, table, v) is None:
                partial.append((table, v))
            elif (table, v) in reachable:
                kept += 1
            else:
                unreferenced.append((table, v))
                size += sum(f.size or 0 for f in store.loc.list_files(f"{base}/{v}"))
    if apply:
        doomed = unreferenced + (partial if incomplete else [])
        # a build may have started since: read the leases again right before deleting
        now_used, builds = _in_use(store, dataset)
        for table, v in doomed:
            if (table, v) in now_used:
                live.append((table, v))
                for found in (unreferenced, partial):
                    if (table, v) in found:
                        found.remove((table, v))
                continue
            # the manifest goes first, so a half-deleted version is never readable
            mpath = f"{store.version_path(dataset, table, v)}/{MANIFEST_NAME}"
            if store.loc.exists(mpath):
                store.fs.delete_file(mpath)
            store.fs.delete_dir(store.version_path(dataset, table, v))
        clear_dead(store, dataset)
    return GcReport(dataset, unreferenced, partial, kept, apply, size, live, builds)
