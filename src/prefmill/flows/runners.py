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
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

from prefmill.errors import RunnerError
from prefmill.storage import Store
from prefmill.task_runners import TASK_RUNNERS, RunnerChoice, task_runner_kinds

__all__ = [
    "RunnerChoice",
    "check_choice",
    "current_runner",
    "engines_concurrency",
    "engines_feed",
    "engines_lockstep",
    "group_size",
    "runner_session",
    "shard_window",
    "shards_in_flight",
]

#: a factory of fresh Prefect task runners for the shards of this build, or None (run in process)
_factory: ContextVar[Callable[[], Any] | None] = ContextVar("prefmill_task_runner", default=None)
#: the recipe's ``max_shards_in_flight`` for the build in progress (None: derived per stage)
_window: ContextVar[int | None] = ContextVar("prefmill_shards_in_flight", default=None)

#: The auto window keeps this many times the engine's concurrency queued (so the engine never waits
#: for a shard to be written), and holds at most ``MAX_AUTO_WINDOW`` shards.
QUEUE_FACTOR = 2
MAX_AUTO_WINDOW = 128


def current_runner() -> Callable[[], Any] | None:
    """The task-runner factory of the build in progress (None: shards run in the flow's process)."""
    return _factory.get()


def shards_in_flight() -> int | None:
    """The build's ``max_shards_in_flight`` (None: each stage derives its window)."""
    return _window.get()


def engines_concurrency(engines: Iterable[tuple[str | None, int | None]]) -> int | None:
    """Requests the busiest of a stage's engines (``(spec, batch_size)`` pairs) takes at once, or
    None when the stage calls no engine."""
    from prefmill.engines.registry import engine_concurrency

    found = [engine_concurrency(spec, batch_size=size) for spec, size in engines if spec]
    return max(found) if found else None


def engines_lockstep(engines: Iterable[tuple[str | None, int | None]]) -> bool:
    """Whether any of a stage's engines gives rows that depend on what shares their batch
    (``EngineKind.batch_invariant`` False: the in-process engines). Such a stage's shards run in
    fixed groups, batched together in lockstep (``engines.lockstep``), so rows follow from the plan
    alone, never from timing."""
    from prefmill.engines.registry import engine_kind, parse_spec

    return any(spec and not engine_kind(parse_spec(spec).kind).batch_invariant for spec, _ in engines)


def engines_feed(engines: Iterable[tuple[str | None, int | None]]) -> dict[str, Any]:
    """A stage's ``StageSpec`` fields for its engines: ``concurrency`` and ``lockstep``."""
    found = list(engines)
    return {"concurrency": engines_concurrency(found), "lockstep": engines_lockstep(found)}


def shard_window(concurrency: int | None, units: list[int], configured: int | None = None) -> int:
    """How many shards of a stage run at once through one engine: ``configured`` (the recipe's
    ``max_shards_in_flight``) when set, else enough shards that ``QUEUE_FACTOR`` times the engine's
    ``concurrency`` (requests it takes at once) is queued, given the shards' ``units`` of work.
    A stage without an engine (``concurrency`` None) runs one shard at a time."""
    if not units or concurrency is None:
        return 1
    if configured is not None:
        return max(1, min(configured, len(units)))
    per_shard = max(1.0, sum(units) / len(units))
    want = -(-QUEUE_FACTOR * concurrency // int(per_shard))
    return max(1, min(want, MAX_AUTO_WINDOW, len(units)))


def group_size(concurrency: int | None, units: list[int], configured: int | None = None) -> int:
    """How many consecutive shards an in-process engine batches together (``engines.lockstep``):
    ``configured`` when set, else enough full shards (the largest of ``units``) to queue
    ``QUEUE_FACTOR`` times the engine's ``concurrency``. Unlike ``shard_window`` it is not capped
    by the number of shards, so a build that gains shards keeps the groups of the earlier ones."""
    if not units or concurrency is None:
        return 1
    if configured is not None:
        return max(1, configured)
    want = -(-QUEUE_FACTOR * concurrency // max(1, max(units)))
    return max(1, min(want, MAX_AUTO_WINDOW))


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
    window = _window.set(choice.max_shards_in_flight)
    try:
        if factory is None:
            yield choice
            return
        with _distributed(choice, root, factory) as chosen:
            yield chosen
    finally:
        _window.reset(window)


@contextmanager
def _distributed(choice: RunnerChoice, root: str, factory: Any) -> Iterator[RunnerChoice]:
    with ExitStack() as stack:
        stack.enter_context(_shared_api(remote=choice.address is not None))
        token = _factory.set(factory(choice, stack))
        try:
            yield choice
        finally:
            _factory.reset(token)
