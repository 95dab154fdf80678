"""Task runner ``ray``: shards on the workers of a Ray cluster (prefect-ray's ``RayTaskRunner``).

Ray is started (or connected to ``address``) once per build and shut down at its end; every stage's
``RayTaskRunner`` then uses that instance, so a worker keeps its engine from one stage to the next.
A local instance has ``workers`` CPUs (one shard per worker at a time; Ray sets their
``OMP_NUM_THREADS=1`` like Dask's nanny), no dashboard, and a small object store: shards travel as
files in the store, only their small results go through Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from prefmill.task_runners import RunnerChoice, TaskRunnerKind

#: Bytes of Ray's object store on a local instance (Ray's default is 30% of the machine's memory).
OBJECT_STORE_BYTES = 256 * 1024 * 1024


def _factory(choice: RunnerChoice, stack: ExitStack) -> Callable[[], Any]:
    import ray
    from prefect_ray import RayTaskRunner

    if not ray.is_initialized():
        if choice.address:
            ray.init(choice.address, namespace="prefect")
        else:
            ray.init(
                num_cpus=choice.workers,
                include_dashboard=False,
                object_store_memory=OBJECT_STORE_BYTES,
                namespace="prefect",
            )
        stack.callback(ray.shutdown)
    return lambda: RayTaskRunner(address=choice.address)


KIND = TaskRunnerKind(
    name="ray",
    summary="prefect-ray's RayTaskRunner: a local Ray instance of `workers` CPUs, or the cluster at "
    "`runner_address`",
    factory=_factory,
    module="prefect_ray",
    extra="ray",
    install="pip install 'prefmill[ray]' (prefect-ray, ray)",
)
