"""Stage 1: response synthesis — k candidates per prompt from a policy engine, shard by shard."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, task

from prefmill.engines.registry import get_engine
from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, TableResult, Target, cached_result, log
from prefmill.progress import reporter
from prefmill.recipe import Recipe
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION, synthesize

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


@task(name="generate-shard", **SHARD_TASK)
def generate_shard(
    root: str, dataset: str, version: str, index: int, prompts_version: str, recipe: Recipe
) -> dict[str, Any]:
    """Generate the candidates of prompts [index*shard_size, (index+1)*shard_size) and write the shard."""
    store = Store(root)
    prompts = store.read_arrow(store.manifest(dataset, "prompts", prompts_version))
    shard = prompts.slice(index * recipe.shard_size, recipe.shard_size)
    s = recipe.synthesis
    engine = get_engine(s.engine, batch_size=s.batch_size)
    started = time.perf_counter()
    candidates = synthesize(
        shard,
        engine,
        k=s.k,
        temperatures=s.temperatures,
        top_p=s.top_p,
        max_new_tokens=s.max_new_tokens,
        seed=recipe.seed,
        progress=lambda n: reporter().advance(STAGE, units=n),
    )
    seconds = time.perf_counter() - started
    stats = {"generate_seconds": round(seconds, 3), "requests": candidates.num_rows}
    store.open_version(dataset, "candidates", version).write_shard(index, candidates, stats=stats)
    return stats


@flow(name="prefmill-synthesis", **STAGE_FLOW)
def synthesis_flow(recipe: Recipe, root: str, prompts: Manifest) -> TableResult:
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
        return cached_result(store, done, STAGE)

    vid = target.version
    writer = target.writer
    n_shards = max(1, -(-prompts.rows // recipe.shard_size))
    finished = set(writer.finished_shards())
    todo = [i for i in range(n_shards) if i not in finished]
    if finished:
        log().info("synthesis: resuming candidates@%s, %d of %d shards done", vid, len(finished), n_shards)
    remaining = sum(min(recipe.shard_size, prompts.rows - i * recipe.shard_size) for i in todo)
    reporter().stage_started(
        STAGE, shards=n_shards, done=len(finished), units=remaining * recipe.synthesis.k, unit="samples"
    )
    for i in todo:
        stats = generate_shard(root, recipe.dataset, vid, i, prompts.version, recipe)
        log().info("synthesis: shard %d/%d written (%s)", i + 1, n_shards, stats)
        reporter().shard_done(STAGE)
    result = target.publish(expected_shards=n_shards, extra_stats={"resumed_shards": len(finished)})
    reporter().stage_finished(STAGE, cached=False)
    return result
