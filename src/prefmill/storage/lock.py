"""Leases and version locks of running builds, so that gc and a second build respect a live one.

Both live under ``<root>/<dataset>/_live/`` (a name no table can have):

- ``build-<id>.json``, a build's **lease**: its process (host, pid, start time), a heartbeat, and the
  versions it uses (reuses, reads or is writing, published or not). ``gc`` keeps every version a live
  lease names, with its ancestors, so nothing a running build has published or is writing is deleted
  before its ref is written.
- ``lock-<table>@<version>.json``, the **lock** of a version being made, naming its lease. It is
  created atomically (first writer wins); a second build making the same version waits while the
  holder's lease is live, then finds the version published and reuses it (or, when the holder died,
  takes the lock over and resumes from the shards it left).

A lease is live while its process runs, on this host (a killed build's lease is dead at once), and
while its heartbeat is fresh (``TTL``) for a build on another host. Breaking a dead holder's lock is
best effort on object stores (two waiters may both break it); correctness never rests on the lock:
shards and manifests are first-writer-wins, so the worst case is work done twice.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field

from prefmill.storage.catalog import Catalog
from prefmill.storage.naming import check_name, now

LIVE_DIR = "_live"
#: seconds between heartbeats, and how old a heartbeat of another host's build may be while it is live
HEARTBEAT, TTL = 20.0, 120.0
_HOST = socket.gethostname()


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux: /proc/<pid>/stat field 22), to tell a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LeaseInfo:
    """A lease as read from the store."""

    id: str
    host: str
    pid: int
    proc_start: str | None
    started_at: str
    heartbeat: float
    versions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def live(self) -> bool:
        if self.host == _HOST:
            if not _pid_alive(self.pid):
                return False
            start = _proc_start(self.pid)
            return start is None or self.proc_start is None or start == self.proc_start
        return time.time() - self.heartbeat < TTL

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (started {self.started_at})"

    @classmethod
    def from_json(cls, text: str) -> LeaseInfo:
        d = json.loads(text)
        d["versions"] = [tuple(v) for v in d.get("versions", [])]
        return cls(**d)


def _live_path(store: Catalog, dataset: str, name: str = "") -> str:
    base = store.path(check_name("dataset", dataset), LIVE_DIR)
    return f"{base}/{name}" if name else base


def _read(store: Catalog, path: str) -> str | None:
    try:
        return store.loc.read_text(path)
    except (FileNotFoundError, OSError):
        return None


def leases(store: Catalog, dataset: str) -> list[LeaseInfo]:
    """Every lease file of ``dataset`` (live or not)."""
    out = []
    for info in store.loc.list_files(_live_path(store, dataset)):
        if info.base_name.startswith("build-") and info.base_name.endswith(".json"):
            text = _read(store, info.path)
            try:
                out.append(LeaseInfo.from_json(text)) if text else None
            except (ValueError, TypeError):
                continue  # a lease being written, or damaged: not a live build's
    return out


def live_leases(store: Catalog, dataset: str) -> list[LeaseInfo]:
    return [lease for lease in leases(store, dataset) if lease.live]


def _lease_file(store: Catalog, dataset: str, lease_id: str) -> LeaseInfo | None:
    text = _read(store, _live_path(store, dataset, f"build-{lease_id}.json"))
    try:
        return LeaseInfo.from_json(text) if text else None
    except (ValueError, TypeError):
        return None


def clear_dead(store: Catalog, dataset: str) -> int:
    """Delete the lease and lock files of builds that are no longer running; returns how many. Each
    file's owner is read anew right before it goes, so a build starting meanwhile keeps its own."""
    gone = 0
    for info in store.loc.list_files(_live_path(store, dataset)):
        name = info.base_name
        if name.startswith("build-") and name.endswith(".json"):
            owner = _lease_file(store, dataset, name[len("build-") : -len(".json")])
            dead = owner is not None and not owner.live
        elif name.startswith("lock-") and name.endswith(".json"):
            text = _read(store, info.path)
            holder = json.loads(text).get("lease", "") if text else ""
            owner = _lease_file(store, dataset, holder)
            dead = text is not None and (owner is None or not owner.live)
        else:
            continue
        if dead:
            _delete(store, info.path)
            gone += 1
    _tidy(store, dataset)
    return gone


def _tidy(store: Catalog, dataset: str) -> None:
    """Remove the live folder of a local store once nothing is in it (object stores have no folders)."""
    if store.loc.is_local:
        with suppress(OSError):
            os.rmdir(_live_path(store, dataset))


def _delete(store: Catalog, path: str) -> None:
    with suppress(FileNotFoundError, OSError):
        store.fs.delete_file(path)


def _lock_name(table: str, version: str) -> str:
    return f"lock-{check_name('table', table)}@{check_name('version', version)}.json"


class BuildLease:
    """The lease of one running build on one dataset (a context manager: written on enter, heartbeat
    while open, removed with its locks on exit)."""

    def __init__(self, store: Catalog, dataset: str) -> None:
        self.store = store
        self.dataset = check_name("dataset", dataset)
        self.info = LeaseInfo(
            id=uuid.uuid4().hex[:16],
            host=_HOST,
            pid=os.getpid(),
            proc_start=_proc_start(os.getpid()),
            started_at=now(),
            heartbeat=time.time(),
        )
        self.path = _live_path(store, dataset, f"build-{self.info.id}.json")
        self.locks: set[tuple[str, str]] = set()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> BuildLease:
        self._write()
        self._beat = threading.Thread(target=self._heartbeat, name="prefmill-lease", daemon=True)
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        for table, version in list(self.locks):
            self.release(table, version)
        _delete(self.store, self.path)
        _tidy(self.store, self.dataset)

    def _write(self) -> None:
        with self._mutex:
            self.info.heartbeat = time.time()
            payload = json.dumps(self.info.__dict__, sort_keys=True).encode()
            self._put(self.path, payload, replace=True)

    def _put(self, path: str, payload: bytes, *, replace: bool) -> bool:
        # the folder every time: another build's exit may have removed it (empty) a moment ago
        for attempt in (0, 1):
            self.store.fs.create_dir(_live_path(self.store, self.dataset), recursive=True)
            try:
                return self.store.loc.write_atomic(path, payload, replace=replace)
            except FileNotFoundError:
                if attempt:
                    raise
        return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                self._write()
            except OSError:  # a transient store error: the next beat tries again
                continue

    def use(self, table: str, version: str) -> None:
        """Name a version this build uses (before it reads or writes it), so gc keeps it."""
        key = (table, version)
        if key not in self.info.versions:
            self.info.versions.append(key)
            self._write()

    def acquire(
        self,
        table: str,
        version: str,
        *,
        on_wait: Callable[[LeaseInfo], None] | None = None,
        poll: float = 0.25,
    ) -> None:
        """Hold the lock of ``table@version``, waiting while another live build holds it."""
        self.use(table, version)
        path = _live_path(self.store, self.dataset, _lock_name(table, version))
        payload = json.dumps({"lease": self.info.id, "table": table, "version": version, "since": now()})
        told = False
        while True:
            if self._put(path, payload.encode(), replace=False):
                self.locks.add((table, version))
                return
            text = _read(self.store, path)
            if text is None:
                continue  # released between our attempt and the read
            holder_id = json.loads(text).get("lease")
            if holder_id == self.info.id:
                self.locks.add((table, version))
                return
            holder = _lease_file(self.store, self.dataset, holder_id) if holder_id else None
            if holder is None or not holder.live:
                if _read(self.store, path) == text:  # still the dead holder's: take it over
                    _delete(self.store, path)
                continue
            if not told and on_wait is not None:
                on_wait(holder)
                told = True
            time.sleep(poll)
            poll = min(poll * 1.5, 2.0)

    def release(self, table: str, version: str) -> None:
        path = _live_path(self.store, self.dataset, _lock_name(table, version))
        text = _read(self.store, path)
        if text is not None and json.loads(text).get("lease") == self.info.id:
            _delete(self.store, path)
        self.locks.discard((table, version))


_current: ContextVar[BuildLease | None] = ContextVar("prefmill_lease", default=None)


def current_lease(store: Catalog | None = None, dataset: str | None = None) -> BuildLease | None:
    """The lease of the build this code runs in (None outside a build); with ``store`` and ``dataset``
    given, only when the lease is on that store's root and dataset."""
    lease = _current.get()
    if lease is None or store is None:
        return lease
    if lease.store.root != store.root or lease.dataset != dataset:
        return None
    return lease


@contextmanager
def build_lease(store: Catalog, dataset: str) -> Iterator[BuildLease]:
    """Hold a lease on ``dataset`` for the duration of the block (the build's)."""
    with BuildLease(store, dataset) as lease:
        token = _current.set(lease)
        try:
            yield lease
        finally:
            _current.reset(token)


__all__ = [
    "LIVE_DIR",
    "BuildLease",
    "LeaseInfo",
    "build_lease",
    "clear_dead",
    "current_lease",
    "leases",
    "live_leases",
]
