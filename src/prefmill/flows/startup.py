"""Before a build starts Prefect: a storage root that can be written, and Prefect's API up.

``check_root`` turns a root that is a file, sits under a file, or cannot be written into one line
before anything slow starts. ``start_local_api`` starts Prefect's temporary local API (when no
``PREFECT_API_URL`` is set) itself, so a start that times out on a busy machine is retried once with
twice the time, and a second failure says what to do instead of Prefect's traceback.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from prefmill.errors import PrefmillError, StorageError
from prefmill.storage.fs import resolve


def check_root(root: str) -> None:
    """Fail in one line when the local root ``root`` cannot hold a store: it (or a folder above it)
    is a file, or it cannot be created or written. Roots on object storage are not checked here."""
    loc = resolve(root)
    if not loc.is_local:
        return
    path = Path(loc.base)
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            where = "is" if folder == path else f"is under {folder}, which is"
            raise StorageError(f"storage root {path} {where} a file, not a folder: pass --root a folder")
    # probe the root, or the nearest folder above it that exists: nothing is created before the
    # build's other checks pass (a refused build leaves no empty root behind)
    existing = next(f for f in (path, *path.parents) if f.exists())
    probe = existing / f".prefmill-write-check-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(
            f"storage root {path} cannot be written ({reason.lower()}): pass --root a folder you can "
            "write, or fix its permissions"
        ) from None


#: Seconds the temporary API gets to start when the environment does not say.
DEFAULT_START_TIMEOUT = 90.0


def start_local_api() -> None:
    """Start Prefect's temporary local API now, retrying once with twice the time; a no-op when a
    server is configured (``PREFECT_API_URL``) or the API is already up."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE

    if PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value():
        return
    raw = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "")
    try:
        timeout = float(raw) if raw else DEFAULT_START_TIMEOUT
    except ValueError:
        timeout = DEFAULT_START_TIMEOUT
    waits = (timeout, timeout * 2)
    for wait in waits:
        server = SubprocessASGIServer()  # the singleton the flow's client uses
        if server.running:
            return
        try:
            server.start(timeout=wait)  # type: ignore[arg-type]
            return
        except RuntimeError:
            server.stop()  # and forget it, so the retry starts a fresh process
    raise PrefmillError(
        f"Prefect's local API did not start (waited {waits[0]:g} s, then {waits[1]:g} s): run again, "
        "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or run `prefect server start` and set "
        "PREFECT_API_URL"
    )


# --- runs of a build that died: marked crashed instead of staying Running -------------------------------

#: Flow-run states a dead process leaves behind.
_LIVE_STATES = ("RUNNING", "PENDING", "SCHEDULED")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def mark_stale_runs(tags: list[str]) -> int:
    """Mark crashed the flow runs of this build (``tags[0]``, flows/naming.py ``run_tags``) left Running
    / Pending by a process of this host that is gone (killed with SIGKILL, a lost machine...). Returns
    how many were marked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = next(t for t in tags if t.startswith("host:"))
    runs_filter = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tags[0]]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in _LIVE_STATES])),
    )
    marked = 0
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=runs_filter):
            pids = [int(t[4:]) for t in run.tags if t.startswith("pid:") and t[4:].isdigit()]
            if host not in run.tags or not pids or _alive(pids[0]):
                continue
            message = f"the process running this build (pid {pids[0]}) is gone; marked crashed by a later run"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            marked += 1
    return marked
