"""Stage 1: response synthesis — k candidates per prompt from a policy engine, shard by shard."""

from __future__ import annotations

import time
from typing import Any

import pyarrow.parquet as pq
from prefect import flow, task

from prefmill.engines.registry import get_engine
from prefmill.flows.common import (
    SHARD_TASK,
    STAGE_FLOW,
    TableResult,
    Target,
    cached_result,
    latest_retry,
    log,
    run_shards,
)
from prefmill.flows.incremental import candidates_reuse, top_up_calls, top_up_shard
from prefmill.progress import reporter
from prefmill.recipe import Recipe
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION, retry_failed, synthesize

STAGE = "synthesis"


def synthesis_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the candidates version. ``batch_size`` is left out: it changes speed, not rows."""
    s = recipe.synthesis
    return {
        "engine": s.engine,
        "k": s.k,
        "temperatures": s.temperatures,
        "top_p": s.top_p,
        "max_new_tokens": s.max_new_tokens,
        "seed": recipe.seed,
        "shard_size": recipe.shard_size,
    }


def _sampling(recipe: Recipe) -> dict[str, Any]:
    """The keyword arguments of ``synthesize``: the versioned config's sampling part, and progress."""
    config = synthesis_config(recipe)
    args = {key: config[key] for key in ("k", "temperatures", "top_p", "max_new_tokens", "seed")}
    return {**args, "progress": lambda n: reporter().advance(STAGE, units=n)}


@task(name="generate-shard", **SHARD_TASK)
def generate_shard(
    root: str, dataset: str, version: str, index: int, prompts_version: str, recipe: Recipe
) -> dict[str, Any]:
    """Generate the candidates of prompts [index*shard_size, (index+1)*shard_size) and write the shard."""
    store = Store(root)
    prompts = store.read_arrow(store.manifest(dataset, "prompts", prompts_version))
    shard = prompts.slice(index * recipe.shard_size, recipe.shard_size)
    engine = get_engine(recipe.synthesis.engine, batch_size=recipe.synthesis.batch_size)
    started = time.perf_counter()
    candidates = synthesize(shard, engine, **_sampling(recipe))
    seconds = time.perf_counter() - started
    stats = {"generate_seconds": round(seconds, 3), "requests": candidates.num_rows}
    store.open_version(dataset, "candidates", version).write_shard(index, candidates, stats=stats)
    return stats


@task(name="retry-shard", **SHARD_TASK)
def retry_shard(
    root: str,
    dataset: str,
    version: str,
    index: int,
    previous: Manifest,
    prompts_version: str,
    recipe: Recipe,
) -> dict[str, Any]:
    """Shard ``index`` of ``previous`` with its failed rows generated again, written into ``version``."""
    store = Store(root)
    old = pq.read_table(store.file_paths(previous)[index], filesystem=store.fs)
    prompts = store.read_arrow(store.manifest(dataset, "prompts", prompts_version))
    engine = get_engine(recipe.synthesis.engine, batch_size=recipe.synthesis.batch_size)
    started = time.perf_counter()
    candidates, retried = retry_failed(old, prompts, engine, **_sampling(recipe))
    stats = {
        "generate_seconds": round(time.perf_counter() - started, 3),
        "requests": retried,
        "retried": retried,
    }
    store.open_version(dataset, "candidates", version).write_shard(index, candidates, stats=stats)
    return stats


def _retry_errors(
    recipe: Recipe, root: str, target: Target, failed: Manifest, prompts: Manifest
) -> TableResult:
    """A new candidates version that re-attempts only ``failed``'s error rows; shards without errors
    are taken from ``failed`` by reference."""
    store = target.store
    paths = store.file_paths(failed)
    sources = sorted({f.version or failed.version for f in failed.files})
    retry = Target.open(
        store,
        recipe.dataset,
        "candidates",
        stage=STAGE,
        code_version=SYNTHESIS_CODE_VERSION,
        config={**target.config, "retry_of": failed.version},
        parents=[*target.parents, *(Parent("candidates", v) for v in sorted({failed.version, *sources}))],
    )
    error_counts = [
        f.rows - pq.read_table(path, columns=["error"], filesystem=store.fs).column("error").null_count
        for f, path in zip(failed.files, paths, strict=True)
    ]
    finished = set(retry.writer.finished_shards())
    todo = [i for i, n in enumerate(error_counts) if n and i not in finished]
    log().info("synthesis: retrying %d failed rows of candidates@%s", sum(error_counts), failed.version)
    reporter().stage_started(
        STAGE,
        shards=len(paths),
        done=len(paths) - len(todo),
        units=sum(error_counts[i] for i in todo),
        unit="retries",
    )
    calls = {i: (root, recipe.dataset, retry.version, i, failed, prompts.version, recipe) for i in todo}
    for _ in run_shards(STAGE, retry_shard, calls, {i: error_counts[i] for i in todo}):
        pass
    borrowed = {i: failed.files[i].version or failed.version for i, n in enumerate(error_counts) if not n}
    result = retry.publish(expected_shards=len(paths), borrowed=borrowed)
    reporter().stage_finished(STAGE, cached=False)
    return result


@flow(name="prefmill-synthesis", **STAGE_FLOW)
def synthesis_flow(recipe: Recipe, root: str, prompts: Manifest, retry_errors: bool = False) -> TableResult:
    store = Store(root)
    target = Target.open(
        store,
        recipe.dataset,
        "candidates",
        stage=STAGE,
        code_version=SYNTHESIS_CODE_VERSION,
        config=synthesis_config(recipe),
        parents=[Parent("prompts", prompts.version)],
    )
    if (done := target.existing) is not None:
        done = latest_retry(store, done)
        if retry_errors and done.totals.get("errors"):
            return _retry_errors(recipe, root, target, done, prompts)
        return cached_result(store, done, STAGE)

    vid = target.version
    writer = target.writer
    n_shards = max(1, -(-prompts.rows // recipe.shard_size))
    finished = set(writer.finished_shards())
    reuse = candidates_reuse(store, recipe.dataset, target.config, prompts, recipe.shard_size, n_shards)
    target.parents += reuse.parents("candidates")
    todo = [i for i in range(n_shards) if i not in finished and i not in reuse.borrowed]
    if finished:
        log().info("synthesis: resuming candidates@%s, %d of %d shards done", vid, len(finished), n_shards)
    remaining = sum(min(recipe.shard_size, prompts.rows - i * recipe.shard_size) for i in todo)
    reporter().stage_started(
        STAGE, shards=n_shards, done=len(finished), units=remaining * recipe.synthesis.k, unit="samples"
    )
    calls = {
        i: (root, recipe.dataset, vid, i, prompts.version, recipe) for i in todo if i not in reuse.top_up
    }
    size = recipe.shard_size
    units = {i: min(size, prompts.rows - i * size) * recipe.synthesis.k for i in todo}
    for i, stats in run_shards(STAGE, generate_shard, calls, units):
        log().info("synthesis: shard %d/%d written (%s)", i + 1, n_shards, stats)
    tops = top_up_calls(reuse, store, root, recipe, vid, prompts.version, todo)
    for _ in run_shards(STAGE, top_up_shard, tops):
        pass
    result = target.publish(
        expected_shards=n_shards, extra_stats={"resumed_shards": len(finished)}, borrowed=reuse.borrowed
    )
    reporter().stage_finished(STAGE, cached=False)
    return result
