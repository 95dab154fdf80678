"""Task runner ``dask``: shards on the workers of a Dask cluster (Prefect's ``DaskTaskRunner``).

Without an address it starts a local cluster of ``workers`` single-threaded worker processes for
the build (closed at its end).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from prefmill.task_runners import RunnerChoice, TaskRunnerKind


def _factory(choice: RunnerChoice, stack: ExitStack) -> Callable[[], Any]:
    from prefect_dask import DaskTaskRunner

    address = choice.address
    if address is None:
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=choice.workers,
            threads_per_worker=1,  # one shard at a time per worker; the engine uses the cores
            processes=True,
            dashboard_address=":0",  # a free port: parallel builds never clash on 8787
        )
        stack.callback(cluster.close)
        address = cluster.scheduler_address
    return lambda: DaskTaskRunner(address=address)


KIND = TaskRunnerKind(
    name="dask",
    summary="Prefect's DaskTaskRunner: a local cluster of `workers` processes, or the cluster at "
    "`runner_address`",
    factory=_factory,
    module="prefect_dask",
    extra="dask",
    install="pip install 'prefmill[dask]' (prefect-dask, dask distributed)",
)
