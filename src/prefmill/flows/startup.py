"""Before a build starts Prefect: a storage root that can be written, and Prefect's API up.

``check_root`` turns a root that is a file, sits under a file, or cannot be written into one line
before anything slow starts. ``start_local_api`` starts Prefect's temporary local API (when no
``PREFECT_API_URL`` is set) itself, so a start that times out on a busy machine is retried once with
twice the time, and a second failure says what to do instead of Prefect's traceback.

The temporary API is Prefect's own ``SubprocessASGIServer`` (the singleton Prefect's client uses), started
in a session of its own: a Ctrl-C in the terminal (SIGINT to the whole foreground process group)
reaches prefmill only, so the API is still up while the build marks its runs crashed. Prefect stops it
at exit (its ``atexit`` hook); on SIGTERM, after Prefect has marked the runs crashed and re-raised the
signal, ``_stop_then_die`` stops it before the process ends, so no API is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Any

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
        server = _own_session_server()
        try:
            server.start(timeout=wait)  # type: ignore[arg-type]
            _stop_on_sigterm(server)
            return
        except RuntimeError:
            server.stop()  # and forget it, so the retry starts a fresh process
    raise PrefmillError(
        f"Prefect's local API did not start (waited {waits[0]:g} s, then {waits[1]:g} s): run again, "
        "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or run `prefect server start` and set "
        "PREFECT_API_URL"
    )


def _own_session_server() -> Any:
    """Prefect's temporary API server, registered as the singleton its client uses, whose process is
    started in a new session (its own process group): a terminal's Ctrl-C does not reach it."""
    from prefect.server.api import server as server_module

    class OwnSessionServer(server_module.SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            with _POPEN_LOCK:  # Prefect builds the command; only the session is added
                plain = server_module.subprocess
                server_module.subprocess = _NewSessionSubprocess()  # type: ignore[assignment]
                try:
                    return super()._run_uvicorn_command()
                finally:
                    server_module.subprocess = plain

    server_module.SubprocessASGIServer._instances.pop(None, None)
    return OwnSessionServer()  # SubprocessASGIServer() now returns it


_POPEN_LOCK = threading.Lock()


class _NewSessionSubprocess:
    """``subprocess`` as Prefect's server module sees it while it starts the API: ``Popen`` starts the
    process in a new session."""

    Popen = partial(subprocess.Popen, start_new_session=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


def _stop_on_sigterm(server: Any) -> None:
    """Stop ``server`` when SIGTERM ends this process. During a flow Prefect's own handler turns SIGTERM
    into a crash of the runs, then restores this handler and sends the signal again."""
    # outside the main thread (the Python API called from a thread) only Prefect's atexit stops it
    with contextlib.suppress(ValueError):
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, partial(_stop_then_die, server, previous))


def _stop_then_die(server: Any, previous: Any, signum: int, frame: Any) -> None:
    """Stop the API, then do what SIGTERM did before: the default ends the process (its exit status
    says SIGTERM: 143 in a shell); a handler of the program that called prefmill runs instead."""
    try:
        server.stop()
    finally:
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            os.kill(os.getpid(), signum)


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
