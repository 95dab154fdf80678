"""Task-runner kinds: where a build's shard tasks run (``local``, ``dask``, ``ray``).

Each kind is one module of this package that declares ``KIND = TaskRunnerKind(...)``: its name, the
Python module it needs, the ``prefmill[...]`` extra that installs it, and its factory. The table
``task_runner_kinds()`` (and ``TASK_RUNNERS``, its names) is built from those modules; the recipe's
``task_runner`` choices, the CLI's ``--task-runner`` help and ``flows.runners`` come from it.
Importing this package imports no prefect, dask or ray: a factory imports them when a build starts.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

__all__ = ["TASK_RUNNERS", "RunnerChoice", "TaskRunnerKind", "task_runner_kinds"]


@dataclass(frozen=True)
class RunnerChoice:
    """Which task runner a build uses: ``kind`` (local, dask, ray), the ``address`` of a running
    cluster (None: start a local one with ``workers`` single-threaded worker processes), and
    ``max_shards_in_flight``: shards whose requests one engine gets at once (None: enough to keep
    twice the engine's concurrency queued)."""

    kind: str = "local"
    address: str | None = None
    workers: int = 2
    max_shards_in_flight: int | None = None

    @property
    def distributed(self) -> bool:
        kind = task_runner_kinds().get(self.kind)
        return kind is not None and kind.distributed


Factory = Callable[[RunnerChoice, ExitStack], Callable[[], Any]]
"""Starts what a build's shards need (a local cluster, or a connection to ``choice.address``),
registering its clean-up on the stack, and returns a maker of fresh Prefect task runners."""


@dataclass(frozen=True)
class TaskRunnerKind:
    """One task runner: ``module`` must import for it to work and ``extra`` installs it (None for
    ``local``, which needs nothing); ``factory`` is None for the in-process runner."""

    name: str
    summary: str
    factory: Factory | None = None
    module: str | None = None
    extra: str | None = None
    install: str | None = None

    @property
    def distributed(self) -> bool:
        return self.factory is not None


@functools.cache
def task_runner_kinds() -> dict[str, TaskRunnerKind]:
    """Every task-runner kind by name: in-process first, then the distributed ones by name."""
    kinds: list[TaskRunnerKind] = []
    for info in pkgutil.iter_modules(__path__):
        kind = getattr(importlib.import_module(f"{__name__}.{info.name}"), "KIND", None)
        if isinstance(kind, TaskRunnerKind):
            kinds.append(kind)
    return {k.name: k for k in sorted(kinds, key=lambda k: (k.distributed, k.name))}


TASK_RUNNERS: tuple[str, ...] = tuple(task_runner_kinds())
"""The task-runner names, default first: ``("local", "dask", "ray")``."""
