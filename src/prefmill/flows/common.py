"""Shared pieces of the stage flows: results, logging, shard-task options."""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from prefmill.errors import PrefmillError
from prefmill.flows.artifacts import publish_artifacts
from prefmill.flows.naming import flow_run_name
from prefmill.flows.results import TableResult, latest_retry, log  # noqa: F401 (re-exported)
from prefmill.progress import reporter
from prefmill.storage import Manifest, Parent, Store, VersionWriter, version_id
from prefmill.storage.lock import LeaseInfo, current_lease


def current_flow_run_id() -> str | None:
    run_id = flow_run.id
    return str(run_id) if run_id else None


def _retry_unless_prefmill_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry infrastructure failures, not our own deterministic errors (bad input, schema)."""
    return not isinstance(getattr(state, "data", None), PrefmillError)


#: Options of every shard task: no result persistence (shards travel as files, not task results),
#: no Prefect cache (prefmill's versions are the cache), one retry for infrastructure failures.
SHARD_TASK = {
    "persist_result": False,
    "cache_policy": NO_CACHE,
    "retries": 1,
    "retry_delay_seconds": 1,
    "retry_condition_fn": _retry_unless_prefmill_error,
}

#: Options of every stage flow (and ``build``): results travel as files; on completion the flow publishes
#: Prefect artifacts of its row counts and a summary (``artifacts.publish_artifacts``).
STAGE_FLOW = {
    "persist_result": False,
    "validate_parameters": False,
    "on_completion": [publish_artifacts],
    "flow_run_name": flow_run_name,  # DATASET-STAGE (flows/naming.py)
}


def cached_result(store: Store, m: Manifest, stage: str) -> TableResult:
    if (lease := current_lease(store, m.dataset)) is not None:
        lease.use(m.table, m.version)  # e.g. the retry that superseded the version found
    log().info("%s: cached %s@%s (%d rows)", stage, m.table, m.version, m.rows)
    reporter().stage_finished(stage, cached=True)
    return TableResult.of(store, m, cached=True, started=time.perf_counter())


@dataclass
class Target:
    """The table version a stage is about to make: its id follows from (table, stage, code version,
    config, parents); ``existing`` is its manifest when an earlier run already published it."""

    store: Store
    writer: VersionWriter
    stage: str
    code_version: str
    config: dict[str, Any]
    parents: list[Parent]
    started: float = field(default_factory=time.perf_counter)
    #: shards already written when this run claimed the version (an earlier run's)
    found: set[int] = field(default_factory=set)

    @classmethod
    def open(
        cls,
        store: Store,
        dataset: str,
        table: str,
        *,
        stage: str,
        code_version: str,
        config: dict[str, Any],
        parents: list[Parent],
    ) -> Target:
        vid = version_id(table, stage, code_version, config, parents)
        if (lease := current_lease(store, dataset)) is not None:
            lease.use(table, vid)  # before it is read or written: gc keeps it while the build runs
        return cls(store, store.open_version(dataset, table, vid), stage, code_version, config, parents)

    def claim(self) -> Manifest | None:
        """Hold this version's lock for the build (waiting while another build makes it); returns
        its manifest when that build published it meanwhile (reuse it), else None (make it)."""
        if (lease := current_lease(self.store, self.writer.dataset)) is not None:
            lease.acquire(self.writer.table, self.version, on_wait=self._waiting)
            if (done := self.existing) is not None:
                lease.release(self.writer.table, self.version)
                return done
        self.found = set(self.writer.finished_shards())
        return None

    def _waiting(self, holder: LeaseInfo) -> None:
        log().warning(
            "%s: waiting for another build (%s) making %s@%s",
            self.stage,
            holder.describe(),
            self.writer.table,
            self.version,
        )
        print(
            f"{self.stage}: waiting for another build ({holder.describe()}) making "
            f"{self.writer.table}@{self.version}",
            file=sys.stderr,
            flush=True,
        )

    @property
    def version(self) -> str:
        return self.writer.version

    @property
    def existing(self) -> Manifest | None:
        return self.writer.manifest()

    def publish(
        self,
        *,
        expected_shards: int,
        extra_stats: dict[str, Any] | None = None,
        borrowed: dict[int, str] | None = None,
    ) -> TableResult:
        """Write the manifest (all shards must be in) and describe the new version."""
        m = self.writer.publish(
            borrowed=borrowed,
            stage=self.stage,
            code_version=self.code_version,
            config=self.config,
            parents=self.parents,
            flow_run_id=current_flow_run_id(),
            expected_shards=expected_shards,
            extra_stats=extra_stats,
        )
        if (lease := current_lease(self.store, self.writer.dataset)) is not None:
            lease.release(self.writer.table, self.version)
        log().info("%s: published %s@%s (%d rows)", self.stage, m.table, m.version, m.rows)
        result = TableResult.of(self.store, m, cached=False, started=self.started)
        result.generated = self.writer.generated(m, skip=self.found)
        return result


def candidates_with_prompts(
    store: Store, candidates: Manifest, index: int, prompts: Manifest, columns: list[str]
) -> tuple[pa.Table, pa.Table]:
    """Part file ``index`` of ``candidates``, and the same rows with the prompts' ``columns`` (besides
    prompt_id) joined on: what the judges and revisers of one shard read."""
    cands = pq.read_table(store.file_paths(candidates)[index], filesystem=store.fs)
    refs = store.read_arrow(prompts, columns=["prompt_id", *columns])
    # only the shard's prompts go into the join (the same rows: a left join on prompt_id)
    refs = refs.filter(pc.is_in(refs.column("prompt_id"), value_set=pc.unique(cands.column("prompt_id"))))
    joined = pl.from_arrow(cands).join(pl.from_arrow(refs), on="prompt_id", how="left").to_arrow()
    return cands, joined


def _completed(futures: list[Any], remote: bool) -> Iterator[Any]:
    """``futures`` as they finish. The flow's threads' futures are waited on in short slices, so a
    signal handler (Ctrl-C, Prefect's SIGTERM) runs at once rather than when a shard ends."""
    from prefect.futures import as_completed

    if remote:
        yield from as_completed(futures)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    from prefmill.engines.batching import WAKE_SECONDS

    pending = {f.wrapped_future: f for f in futures}
    while pending:
        done, _ = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_COMPLETED)
        for inner in done:
            yield pending.pop(inner)


def _interruptible(futures: Iterator[Any]) -> Iterator[Any]:
    """``futures``; on Ctrl-C or SIGTERM, the shard threads' engine calls are cancelled first, so the
    task runner's exit does not wait for their requests."""
    from prefmill.engines.batching import cancel_loop_calls

    try:
        yield from futures
    except BaseException as exc:
        if not isinstance(exc, Exception | GeneratorExit):  # KeyboardInterrupt, TerminationSignal
            cancel_loop_calls()
        raise


def run_shards(
    stage: str,
    task: Any,
    calls: Mapping[Hashable, tuple[Any, ...]],
    units: Mapping[Hashable, int] | None = None,
    window: int = 1,
) -> Iterator[tuple[Hashable, Any]]:
    """Run ``task(*calls[i])`` for every shard ``i``; yield ``(i, result)`` as each finishes and report
    the shard done. Stages call it through ``flows.stage.run_stage`` / ``run_jobs``.

    With the default runner the calls run in the flow's process: one after the other for
    ``window`` 1, else up to ``window`` at once in threads (Prefect's ``ThreadPoolTaskRunner``), so
    that one engine gets the requests of several shards together (the task reports its own
    progress). Under a distributed runner (``prefmill.flows.runners``) they are submitted to the
    cluster at once and run on its workers; ``units[i]`` (rows of work) is reported for each shard
    when it finishes, since workers cannot reach the flow's progress display. A failed shard does
    not stop the others (their shards are kept for a resume); the first error is raised once all
    have finished."""
    from prefmill.flows.runners import current_runner

    make = current_runner()
    if make is None and window <= 1:
        for i, args in calls.items():
            result = task(*args)
            reporter().shard_done(stage)
            yield i, result
        return
    remote = make is not None
    if make is None:
        from prefect.task_runners import ThreadPoolTaskRunner

        def make() -> Any:
            return ThreadPoolTaskRunner(max_workers=window)

    names = list(inspect.signature(task.fn).parameters)
    with make() as runner:
        futures = {i: runner.submit(task, dict(zip(names, args, strict=True))) for i, args in calls.items()}
        index = {id(f): i for i, f in futures.items()}
        first_error: BaseException | None = None
        for done in _interruptible(_completed(list(futures.values()), remote)):
            i = index[id(done)]
            try:
                result = done.result()
            except BaseException as exc:
                log().error("%s: shard %s failed%s: %s", stage, i, " on a worker" if remote else "", exc)
                first_error = first_error or exc
                continue
            if remote:
                reporter().advance(stage, units=(units or {}).get(i, 0))
            reporter().shard_done(stage)
            yield i, result
        if first_error is not None:
            raise first_error
