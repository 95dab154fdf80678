"""Stage 0: read prompt sources into the `prompts` table (and `prompts_rejected`)."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
from prefect import flow, task

from prefmill.errors import InputError
from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, TableResult, cached_result, current_flow_run_id, log
from prefmill.progress import reporter
from prefmill.recipe import Recipe, file_digest
from prefmill.storage import Store, version_id
from prefmill.tasks.prompts.build import PROMPTS_CODE_VERSION, combine
from prefmill.tasks.prompts.sources.registry import load_source as load_prompt_source
from prefmill.tasks.prompts.sources.registry import source_kind

STAGE = "prompts"


def prompts_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the prompts version: each source's options and, for files, their content hash."""
    sources = []
    for i, source in enumerate(recipe.prompts.sources):
        entry = source.model_dump()
        if (field := source_kind(source).input_file) is not None:
            path = recipe.resolve_path(getattr(source, field))
            if not path.is_file():
                raise InputError(
                    f"prompt file not found: {path} (recipe field prompts.sources[{i}].{field}); fix the path"
                )
            entry[field] = path.name
            entry["sha256"] = file_digest(path)
        sources.append(entry)
    return {"sources": sources}


@task(name="load-prompt-source", **SHARD_TASK)
def load_source(recipe: Recipe, index: int) -> tuple[pa.Table, pa.Table]:
    """One source's prompts and rejected rows (small: prompts travel in memory)."""
    source = recipe.prompts.sources[index]
    return load_prompt_source(source, recipe.resolve_path)


@flow(name="prefmill-prompts", **STAGE_FLOW)
def prompts_flow(recipe: Recipe, root: str) -> list[TableResult]:
    """Load, validate and de-duplicate prompts; publish `prompts_rejected`, then `prompts`."""
    started = time.perf_counter()
    store = Store(root)
    config = prompts_config(recipe)
    vid = version_id("prompts", STAGE, PROMPTS_CODE_VERSION, config, [])
    rid = version_id("prompts_rejected", STAGE, PROMPTS_CODE_VERSION, config, [])
    done = store.find_manifest(recipe.dataset, "prompts", vid)
    rejected_done = store.find_manifest(recipe.dataset, "prompts_rejected", rid)
    if done is not None and rejected_done is not None:
        return [cached_result(store, rejected_done, STAGE), cached_result(store, done, STAGE)]

    n_sources = len(recipe.prompts.sources)
    reporter().stage_started(STAGE, shards=n_sources, done=0, units=n_sources, unit="sources")
    parts = []
    for i in range(n_sources):
        parts.append(load_source(recipe, i))
        reporter().advance(STAGE, units=1)
        reporter().shard_done(STAGE)
    prompts, rejected = combine([(p, r if r.num_columns else None) for p, r in parts])
    common = {"stage": STAGE, "code_version": PROMPTS_CODE_VERSION, "config": config}
    run_id = current_flow_run_id()
    rejected_m = store.write_version(
        recipe.dataset, "prompts_rejected", rejected, flow_run_id=run_id, **common
    )
    if prompts.num_rows == 0:
        raise InputError(
            f"no valid prompts: all {rejected.num_rows} rows were rejected; see why with "
            f"`prefmill show prompts_rejected@{rejected_m.version} --dataset {recipe.dataset}`"
        )
    prompts_m = store.write_version(
        recipe.dataset,
        "prompts",
        prompts,
        flow_run_id=run_id,
        stats={"rejected": rejected.num_rows, "sources": n_sources},
        **common,
    )
    log().info("prompts: %d prompts, %d rejected", prompts_m.rows, rejected_m.rows)
    reporter().stage_finished(STAGE, cached=False)
    return [
        TableResult.of(store, rejected_m, cached=False, started=started),
        TableResult.of(store, prompts_m, cached=False, started=started),
    ]
