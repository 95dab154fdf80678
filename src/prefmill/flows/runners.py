"""Where shard tasks run: in the flow's own process (``local``, the default) or on the workers of a
Dask or Ray cluster through Prefect's task runners (prefect-dask / prefect-ray).

The kinds are declared in ``prefmill.task_runners`` (one module each: name, module, extra, factory).
``runner_session`` is entered once per build: it checks the choice, makes sure every worker reports
to the same Prefect API as the flow, starts the kind's cluster (or connects to ``address``) and
installs the factory of task runners that ``flows.common.run_shards`` uses. Only the flow commits
manifests; workers write shards into the shared store. The runner changes speed, never rows, so it is
not part of any version id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

from prefmill.errors import RunnerError
from prefmill.storage import Store
from prefmill.task_runners import TASK_RUNNERS, RunnerChoice, task_runner_kinds

__all__ = ["RunnerChoice", "check_choice", "current_runner", "runner_session"]

#: a factory of fresh Prefect task runners for the shards of this build, or None (run in process)
_factory: ContextVar[Callable[[], Any] | None] = ContextVar("prefmill_task_runner", default=None)


def current_runner() -> Callable[[], Any] | None:
    """The task-runner factory of the build in progress (None: shards run in the flow's process)."""
    return _factory.get()


def check_choice(choice: RunnerChoice, root: str) -> None:
    """Fail before any work: unknown runner, missing package, a remote cluster with a local root."""
    kind = task_runner_kinds().get(choice.kind)
    if kind is None:
        raise RunnerError(f"task runner '{choice.kind}' is unknown: use one of {', '.join(TASK_RUNNERS)}")
    if not kind.distributed:
        return
    if kind.module is not None:
        try:
            __import__(kind.module)
        except ImportError:
            raise RunnerError(
                f"task runner '{choice.kind}' needs {kind.module.replace('_', '-')}: {kind.install}"
            ) from None
    if choice.address and Store(root).loc.is_local:
        raise RunnerError(
            f"task runner '{choice.kind}' at {choice.address}: workers on other machines cannot see the "
            f"local root {root}; put the root on object storage (--root s3://bucket/prefix)"
        )
    if choice.workers < 1:
        raise RunnerError(f"workers must be at least 1 (got {choice.workers})")


@contextmanager
def _shared_api(remote: bool) -> Iterator[str]:
    """A Prefect API every worker can report to. With ``PREFECT_API_URL`` set, that server. Without it,
    the flow's own temporary API (started now) is handed to local workers, which would otherwise each
    start a temporary API of their own (~10 s each, and runs the flow's API never sees). Workers on
    other machines cannot reach a loopback API: they need a real server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = PREFECT_API_URL.value()
    if url:
        yield url
        return
    if remote:
        raise RunnerError(
            "workers of a remote cluster need a Prefect server they can reach: start one "
            "(`prefect server start --host 0.0.0.0`) and set PREFECT_API_URL=http://HOST:4200/api on the "
            "flow's machine and the workers (see infra/README.md)"
        )
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the same singleton the flow's client would start
    timeout = int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))
    server.start(timeout=timeout)
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url  # inherited by the worker processes
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved


@contextmanager
def runner_session(choice: RunnerChoice, root: str) -> Iterator[RunnerChoice]:
    """Run the build's shards on ``choice`` until the block ends (a no-op for ``local``)."""
    check_choice(choice, root)
    factory = task_runner_kinds()[choice.kind].factory
    if factory is None:
        yield choice
        return
    with ExitStack() as stack:
        stack.enter_context(_shared_api(remote=choice.address is not None))
        token = _factory.set(factory(choice, stack))
        try:
            yield choice
        finally:
            _factory.reset(token)
