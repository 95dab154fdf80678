"""Stage 0: read prompt sources into the `prompts` table (and `prompts_rejected`).

One shard per source, read on the task runner and returned to the flow (prompts are small), which
de-duplicates them across sources and publishes `prompts_rejected`, then `prompts`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
from prefect import flow

from prefmill.errors import InputError
from prefmill.flows.common import STAGE_FLOW, TableResult, Target, cached_result, current_flow_run_id, log
from prefmill.flows.plans.prompts import PromptsPlan
from prefmill.flows.stage import Shard, ShardContext, ShardJob, run_jobs
from prefmill.progress import reporter
from prefmill.recipe import PromptSource
from prefmill.storage import Store
from prefmill.storage.hints import command
from prefmill.tasks.prompts.build import PROMPTS_CODE_VERSION, combine
from prefmill.tasks.prompts.sources.registry import load_source as load_prompt_source

STAGE = "prompts"


def load_source(ctx: ShardContext, source: PromptSource, settings: None) -> tuple[pa.Table, pa.Table]:
    """One source's prompts and rejected rows (its file path is absolute in the plan)."""
    return load_prompt_source(source, Path)


@flow(name="prefmill-prompts", **STAGE_FLOW)
def prompts_flow(plan: PromptsPlan, root: str) -> list[TableResult]:
    """Load, validate and de-duplicate prompts; publish `prompts_rejected`, then `prompts`."""
    started = time.perf_counter()
    store = Store(root)
    common = {"stage": STAGE, "code_version": PROMPTS_CODE_VERSION, "config": plan.config}
    done = Target.open(store, plan.dataset, "prompts", parents=[], **common).existing
    rejected_done = Target.open(store, plan.dataset, "prompts_rejected", parents=[], **common).existing
    if done is not None and rejected_done is not None:
        return [cached_result(store, rejected_done, STAGE), cached_result(store, done, STAGE)]

    n_sources = len(plan.sources)
    reporter().stage_started(STAGE, shards=n_sources, done=0, units=n_sources, unit="sources")
    jobs = {
        i: ShardJob(root, plan.dataset, STAGE, Shard(i, load_source, source, 1, "load-prompt-source"))
        for i, source in enumerate(plan.sources)
    }
    parts = dict(run_jobs(STAGE, jobs))
    prompts, rejected = combine([(p, r if r.num_columns else None) for p, r in (parts[i] for i in jobs)])
    run_id = current_flow_run_id()
    rejected_m = store.write_version(plan.dataset, "prompts_rejected", rejected, flow_run_id=run_id, **common)
    if prompts.num_rows == 0:
        raise InputError(
            f"no valid prompts: all {rejected.num_rows} rows were rejected; see why with "
            f"`{command('show', f'prompts_rejected@{rejected_m.version}', root=root, dataset=plan.dataset)}`"
        )
    prompts_m = store.write_version(
        plan.dataset,
        "prompts",
        prompts,
        flow_run_id=run_id,
        stats={"rejected": rejected.num_rows, "sources": n_sources},
        row_group_rows=plan.row_group_rows,  # a synthesis shard reads one (Store.read_rows)
        **common,
    )
    log().info("prompts: %d prompts, %d rejected", prompts_m.rows, rejected_m.rows)
    reporter().stage_finished(STAGE, cached=False)
    return [
        TableResult.of(store, rejected_m, cached=False, started=started),
        TableResult.of(store, prompts_m, cached=False, started=started),
    ]
