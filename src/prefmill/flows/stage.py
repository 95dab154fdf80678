"""The one skeleton every stage runs on: ``run_stage`` and one shard-task wrapper.

A stage declares what it makes (``StageSpec``: table, stage name, code version, config, parents,
its slice of the build's plan) and, once the version id is known, its shards (``Work``): each
``Shard`` names a pure shard function ``(ShardContext, input, settings) -> (table, stats)``, the
small picklable ``input`` that says which rows it reads, and its rows of work. ``run_stage`` does the
rest, the same way for every stage:

- caching: the version id follows from the spec; a published version is reused (``Target``);
- resume: shards already written are skipped; borrowed shards (incremental reuse, a retry's shards
  without errors) are taken by reference;
- the task runner: every shard is one Prefect task (``shard_task``) run through ``run_shards``, in
  the flow's process or on the workers of a Dask / Ray cluster;
- batching: shards are the unit of caching, not of batching. A stage whose shards call an engine
  (``StageSpec.concurrency``: requests the engine takes at once) runs a window of shards at once
  (``runners.shard_window``: the recipe's ``max_shards_in_flight``, or enough shards to keep twice
  the engine's concurrency queued), so that their requests reach the engine together
  (``engines.batching``); each shard is written the moment its own rows are back, so a killed
  build loses at most the shards in flight. Under Dask / Ray each task is a window of shards that
  the worker runs the same way (``window_task``). An in-process engine (``StageSpec.lockstep``)
  gets fixed groups of consecutive shards instead (``_group_jobs``: shard index // group size,
  the size from the plan), each group one task whose shards' engine calls are batched together in
  a fixed order (``engines.lockstep``); a group partly written before a kill runs again whole,
  writing only its missing shards, so rows never depend on timing or on where a build was killed
  (two groups at a time in the flow's process, ``GROUPS_IN_FLIGHT``: the next group's task starts
  and reads its prompts while the engine runs the first; the engine's lock runs one group's call at
  a time, so no batch changes);
- progress: ``stage_started`` / ``advance`` / ``shard_done`` / ``stage_finished``, and the requests
  in flight (``in_flight``) while shards run; the result carries the achieved concurrency;
- publishing: the manifest, with the stage's extra stats, once all shards are in.

``shard_task`` is the shard-task prologue once: open the store, run the shard function, write its
table as shard ``index`` of the version, report the shard's work. A job whose ``table`` is None
returns the function's result to the flow instead (small results: a prompt source, a calibration).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from prefect import task

from prefmill.engines.batching import IN_FLIGHT, WAKE_SECONDS
from prefmill.engines.lockstep import GroupCancelled, ShardGroup
from prefmill.errors import StorageError
from prefmill.flows.budget import check_error_budget
from prefmill.flows.common import SHARD_TASK, TableResult, Target, log, run_shards
from prefmill.flows.naming import shard_run_name, window_run_name
from prefmill.flows.runners import current_runner, group_size, shard_window, shards_in_flight
from prefmill.progress import reporter
from prefmill.storage import Manifest, Parent, Store

ShardFn = Callable[["ShardContext", Any, Any], Any]
"""``(context, input, settings) -> (table, stats)`` (or any small result for an in-memory job); a
module-level function, so that it travels to workers by reference."""


@dataclass(frozen=True)
class Shard:
    """One shard of a version: its ``index``, the function that makes it, the ``input`` that says
    which rows it reads, its rows of ``units`` of work (progress) and the Prefect task's name."""

    index: int
    work: ShardFn
    input: Any = None
    units: int = 0
    task: str = "shard"


@dataclass
class ShardContext:
    """What a shard function gets besides its input and settings: the store, where it is, and a
    progress hook (``advance``); the wrapper reports whatever of the shard's units it did not."""

    store: Store
    dataset: str
    stage: str
    index: int
    reported: int = 0
    silent: bool = False  # a shard run again only to batch its group's peers: no progress

    def advance(self, units: int = 0, tokens: int = 0) -> None:
        self.reported += units
        if not self.silent:
            reporter().advance(self.stage, units=units, tokens=tokens)

    def progress(self) -> Callable[[int], None]:
        """An engine's ``progress`` callback: ``n`` more rows done."""
        return lambda n: self.advance(units=n)

    def manifest(self, table: str, version: str) -> Manifest:
        return self.store.manifest(self.dataset, table, version)


@dataclass(frozen=True)
class ShardJob:
    """One shard task's arguments: small and picklable (the shard's slice of the plan, never the
    recipe). ``table`` None: the result comes back to the flow instead of being written. ``group``:
    the lockstep group it runs in (in-process engines); ``discard``: a shard already written that
    runs again only so that its group's batches are what they were (its result is dropped)."""

    root: str
    dataset: str
    stage: str
    shard: Shard
    settings: Any = None
    table: str | None = None
    version: str | None = None
    group: Hashable = None
    discard: bool = False


def _run_job(job: ShardJob) -> Any:
    ctx = ShardContext(Store(job.root), job.dataset, job.stage, job.shard.index, silent=job.discard)
    out = job.shard.work(ctx, job.shard.input, job.settings)
    if job.discard:
        return None
    if job.table is not None:
        assert job.version is not None
        table, stats = out
        writer = ctx.store.open_version(job.dataset, job.table, job.version)
        try:
            writer.write_shard(job.shard.index, table, stats=stats)
        except StorageError:
            if not writer.published:
                raise  # else another build published the version first: its manifest wins
        out = stats
    if job.shard.units > ctx.reported:
        reporter().advance(job.stage, units=job.shard.units - ctx.reported)
    return out


#: The one shard task; ``run_jobs`` names each run after its shard (``generate-shard``, ``judge-shard``...).
shard_task = task(name="shard", task_run_name=shard_run_name, **SHARD_TASK)(_run_job)


def _run_window(jobs: list[ShardJob], lockstep: bool = False) -> list[Any]:
    """Run a window of shard jobs at once in this process (a worker's share of a stage under Dask /
    Ray, or a lockstep group), each written as it finishes; a failed shard is tried once more, then
    its error is raised once the others are done. With ``lockstep`` the jobs are one
    ``ShardGroup``: their engine calls are batched together in a fixed composition."""
    group = ShardGroup(len(jobs)) if lockstep else None

    def attempt(n: int, job: ShardJob) -> Any:
        with group.member(n) if group is not None else nullcontext():
            try:
                return _run_job(job)
            except GroupCancelled:
                raise
            except Exception:
                return _run_job(job)

    results: list[Any] = [None] * len(jobs)
    first_error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {pool.submit(contextvars.copy_context().run, attempt, n, j): n for n, j in enumerate(jobs)}
        pending = set(futures)
        try:
            while pending:  # short waits: Ctrl-C / SIGTERM are handled at once
                done, pending = wait(pending, timeout=WAKE_SECONDS, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        results[futures[f]] = f.result()
                    except Exception as exc:
                        first_error = first_error or exc
        except BaseException:
            if group is not None:
                group.cancel()
            raise
    if first_error is not None:
        raise first_error
    return results


#: A window of shards as one task (distributed runners): the worker keeps its engine fed with them.
window_task = task(name="shards", task_run_name=window_run_name, **{**SHARD_TASK, "retries": 0})(_run_window)


def run_jobs(
    stage: str, jobs: Mapping[Hashable, ShardJob], window: int = 1
) -> Iterator[tuple[Hashable, Any]]:
    """Run ``jobs`` on the build's task runner (``run_shards``), those of one task name together,
    up to ``window`` at once, and yield ``(key, result)`` as each finishes. Jobs with a ``group``
    run by groups, each group's shards in lockstep (``_run_groups``)."""
    groups: dict[str, dict[Hashable, ShardJob]] = {}
    for key, job in jobs.items():
        groups.setdefault(job.shard.task, {})[key] = job
    for name, group in groups.items():
        if any(job.group is not None for job in group.values()):
            yield from _run_groups(stage, name, group)
            continue
        if window > 1 and current_runner() is not None:
            yield from _run_windows(stage, name, group, window)
            continue
        calls = {key: (job,) for key, job in group.items()}
        units = {key: job.shard.units for key, job in group.items()}
        yield from run_shards(stage, shard_task.with_options(name=name), calls, units, window=window)


def _run_windows(
    stage: str, name: str, group: Mapping[Hashable, ShardJob], window: int
) -> Iterator[tuple[Hashable, Any]]:
    """A distributed runner's share of ``run_jobs``: one task per ``window`` consecutive shards."""
    keys = list(group)
    yield from _run_chunks(stage, name, group, [keys[n : n + window] for n in range(0, len(keys), window)])


#: Lockstep groups run at once in the flow's process. Two (the next group starting while the engine
#: runs the first) measured 0.93x one big shard's time against 1.12x for one at a time
#: (docs/benchmarks.md, "Keeping fast engines fed"); rows do not change, since the engine's lock runs
#: one group's call at a time and each call holds its own group's shards alone.
GROUPS_IN_FLIGHT = 2


def _run_groups(stage: str, name: str, jobs: Mapping[Hashable, ShardJob]) -> Iterator[tuple[Hashable, Any]]:
    """``run_jobs`` for lockstep groups: one task per group, its members in shard order (in the
    flow's process ``GROUPS_IN_FLIGHT`` groups at a time; on a cluster's workers all at once)."""
    chunks: dict[Hashable, list[Hashable]] = {}
    for key, job in jobs.items():
        chunks.setdefault(job.group, []).append(key)
    ordered = [sorted(keys, key=lambda k: jobs[k].shard.index) for keys in chunks.values()]
    yield from _run_chunks(stage, name, jobs, ordered, lockstep=True, window=GROUPS_IN_FLIGHT)


def _run_chunks(
    stage: str,
    name: str,
    jobs: Mapping[Hashable, ShardJob],
    chunks: list[list[Hashable]],
    lockstep: bool = False,
    window: int = 1,
) -> Iterator[tuple[Hashable, Any]]:
    """One ``window_task`` per chunk of shard jobs, up to ``window`` at once in the flow's process;
    yields the results of the shards each writes (a discarded member of a lockstep group runs, and
    is not written or reported)."""
    calls = {tuple(keys): ([jobs[k] for k in keys], lockstep) for keys in chunks}
    units = {chunk: sum(jobs[k].shard.units for k in chunk if not jobs[k].discard) for chunk in calls}
    task_ = window_task.with_options(name=f"{name}s")
    for chunk, results in run_shards(stage, task_, calls, units, window=min(window, len(calls))):
        written = [(k, r) for k, r in zip(chunk, results, strict=True) if not jobs[k].discard]
        for _ in written[1:]:
            reporter().shard_done(stage)  # run_shards reported the chunk's first
        yield from written


class _InFlight:
    """Samples the process's requests in flight while a stage's shards run: reports them to the
    progress display every ``every`` seconds and gives their time-weighted mean and peak."""

    def __init__(self, stage: str, every: float = 0.2) -> None:
        self.stage = stage
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._report = getattr(reporter(), "in_flight", None)

    def __enter__(self) -> _InFlight:
        self._t0, self._a0 = time.perf_counter(), IN_FLIGHT.area()
        self._thread = threading.Thread(target=self._loop, name="prefmill-in-flight", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            now = IN_FLIGHT.now
            self.peak = max(self.peak, now)
            if self._report is not None:
                self._report(self.stage, requests=now, peak=self.peak)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        span = time.perf_counter() - self._t0
        self.mean = (IN_FLIGHT.area() - self._a0) / span if span > 0 else 0.0


@dataclass
class Work:
    """The shards of a version about to be made: the ``shards`` to write, how many it has in all
    (``total``; default: as many as ``shards``), those ``borrowed`` by reference (shard -> version)
    and the ``parents`` that adds (versions rows are borrowed or kept from)."""

    shards: list[Shard]
    total: int | None = None
    borrowed: dict[int, str] = field(default_factory=dict)
    parents: list[Parent] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return len(self.shards) if self.total is None else self.total


Finish = Callable[[Target, Work, set[int]], dict[str, Any]]
"""``(target, work, shards found written) -> extra manifest stats``, once every shard is in."""


@dataclass
class StageSpec:
    """What a stage declares about one table version it makes; ``run_stage`` does the rest.

    ``shards`` is called with the open target once the version is known not to exist; ``finish``
    gives extra manifest stats; ``existing`` replaces the default handling of a published version
    (reuse it as cached) and reports its own progress."""

    stage: str
    table: str
    code_version: str
    config: dict[str, Any]
    parents: list[Parent]
    shards: Callable[[Target], Work]
    settings: Any = None
    unit: str = "rows"
    finish: Finish | None = None
    existing: Callable[[Manifest], TableResult] | None = None
    concurrency: int | None = None  # requests its shards' engine takes at once (None: no engine)
    lockstep: bool = False  # an in-process engine: shards run in fixed groups (``engines.lockstep``)


def run_stage(root: str, dataset: str, specs: Sequence[StageSpec]) -> list[TableResult]:
    """Make (or find) the versions ``specs`` declare, all of one stage; their shards run together on
    the task runner. Results are in ``specs`` order."""
    store = Store(root)
    stage = specs[0].stage
    results: dict[int, TableResult] = {}
    pending: list[tuple[int, StageSpec, Target]] = []
    plain_cached = 0
    # versions are claimed in table order, so two builds making the same ones never wait on each other
    for n, spec in sorted(enumerate(specs), key=lambda ns: ns[1].table):
        target = Target.open(
            store,
            dataset,
            spec.table,
            stage=spec.stage,
            code_version=spec.code_version,
            config=spec.config,
            parents=list(spec.parents),
        )
        if (done := target.existing) is None and (done := target.claim()) is None:
            pending.append((n, spec, target))
        elif spec.existing is not None:
            results[n] = spec.existing(done)
        else:
            log().info("%s: cached %s@%s (%d rows)", stage, done.table, done.version, done.rows)
            results[n] = TableResult.of(store, done, cached=True, started=target.started)
            plain_cached += 1
    pending.sort(key=lambda p: p[0])
    if not pending:
        if plain_cached:
            reporter().stage_finished(stage, cached=True)
        return check_error_budget(stage, [results[n] for n in range(len(specs))])

    runs: list[tuple[int, StageSpec, Target, Work, set[int]]] = []
    jobs: dict[Hashable, ShardJob] = {}
    for n, spec, target in pending:
        work = spec.shards(target)
        target.parents += work.parents
        finished = set(target.writer.finished_shards())
        if finished:
            log().info(
                "%s: resuming %s@%s, %d of %d shards done",
                stage,
                spec.table,
                target.version,
                len(finished),
                work.expected,
            )
        for s in work.shards:
            if s.index not in finished and s.index not in work.borrowed:
                job = ShardJob(root, dataset, stage, s, spec.settings, spec.table, target.version)
                jobs[(n, s.index)] = job
        runs.append((n, spec, target, work, finished))
    reporter().stage_started(
        stage,
        shards=sum(w.expected for *_, w, _ in runs) + plain_cached,
        done=sum(len(f | set(w.borrowed)) for *_, w, f in runs) + plain_cached,
        units=sum(job.shard.units for job in jobs.values()),
        unit=specs[pending[0][0]].unit,
    )
    totals = {n: w.expected for n, _, _, w, _ in runs}
    concurrency = max((s.concurrency for _, s, *_ in runs if s.concurrency is not None), default=None)
    if any(s.lockstep for _, s, *_ in runs):
        size = _group_jobs(root, dataset, runs, jobs, concurrency)
        log().info("%s: shards batched in fixed groups of %d (engine batch %s)", stage, size, concurrency)
        window = min(size, len(jobs))
    else:
        window = shard_window(concurrency, [j.shard.units for j in jobs.values()], shards_in_flight())
        if window > 1:
            log().info("%s: %d shards in flight at most (engine concurrency %s)", stage, window, concurrency)
    with _InFlight(stage) as meter:
        for key, stats in run_jobs(stage, jobs, window):
            n, i = key  # type: ignore[misc]
            log().info("%s: shard %d/%d written (%s)", stage, i + 1, totals[n], stats)
    for n, spec, target, work, finished in runs:
        extra = spec.finish(target, work, finished) if spec.finish is not None else None
        results[n] = target.publish(expected_shards=work.expected, extra_stats=extra, borrowed=work.borrowed)
        if jobs and concurrency is not None and meter.mean > 0:
            results[n].in_flight = (round(meter.mean, 1), meter.peak, window)
    reporter().stage_finished(stage, cached=False)
    return check_error_budget(stage, [results[n] for n in range(len(specs))])


def _group_jobs(
    root: str,
    dataset: str,
    runs: list[tuple[int, StageSpec, Target, Work, set[int]]],
    jobs: dict[Hashable, ShardJob],
    concurrency: int | None,
) -> int:
    """Put ``jobs`` (keyed ``(spec number, shard index)``) in lockstep groups of consecutive shards,
    in place, and return the group size. The size follows from the plan alone (the shards' size
    and the engine's batch: ``runners.group_size``), never from what is left to do, so a resumed
    build groups its shards as the first attempt did; the shards of a group that were already
    written run again, discarded, so that the group's batches are the same too. Borrowed shards are
    not run: the others of their group are batched among themselves."""
    plan_units = [s.units for *_, work, _ in runs for s in work.shards]
    size = group_size(concurrency, plan_units, shards_in_flight())
    for n, spec, target, work, finished in runs:
        needed = {(s.task, s.index // size) for s in work.shards if (n, s.index) in jobs}
        for s in work.shards:
            group = (n, s.task, s.index // size)
            if (n, s.index) in jobs:
                jobs[(n, s.index)] = replace(jobs[(n, s.index)], group=group)
            elif s.index in finished and group[1:] in needed:
                jobs[(n, s.index)] = ShardJob(
                    root, dataset, spec.stage, s, spec.settings, spec.table, target.version, group, True
                )
    return size


def run_table(root: str, dataset: str, spec: StageSpec) -> TableResult:
    """``run_stage`` for a stage that makes one table."""
    return run_stage(root, dataset, [spec])[0]
