"""The steps stage, between synthesis (and revision) and evaluation: one `steps` shard per
candidates part file, each row one step of a candidate cut by the recipe's `steps` segmenter
(``tasks/steps/segment.py``). Cached, versioned and resumable on the stage skeleton; it runs only
when the recipe has a `steps` section."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow

from prefmill.flows.common import STAGE_FLOW, TableResult, Target
from prefmill.flows.plans.steps import STEPS_CODE_VERSION, StepsPlan
from prefmill.flows.stage import Shard, ShardContext, StageSpec, Work, run_table
from prefmill.storage import Manifest, Parent
from prefmill.tasks.steps.segment import steps_table

STAGE = "steps"


def segment(ctx: ShardContext, candidates: Manifest, plan: StepsPlan) -> tuple[pa.Table, dict[str, Any]]:
    """The steps of the candidates of part file ``index``."""
    path = ctx.store.file_paths(candidates)[ctx.index]
    cands = pq.read_table(
        path, filesystem=ctx.store.fs, columns=["candidate_id", "prompt_id", "response", "error"]
    )
    started = time.perf_counter()
    table, stats = steps_table(cands, plan.segmenter)
    return table, {**stats, "segment_seconds": round(time.perf_counter() - started, 3)}


@flow(name="prefmill-steps", **STAGE_FLOW)
def steps_flow(plan: StepsPlan | None, root: str, candidates: Manifest) -> TableResult | None:
    """The steps version of ``candidates``, or None when the recipe has no `steps` section."""
    if plan is None:
        return None

    def shards(target: Target) -> Work:
        return Work(
            [Shard(i, segment, candidates, f.rows, "segment-shard") for i, f in enumerate(candidates.files)]
        )

    spec = StageSpec(
        stage=STAGE,
        table="steps",
        code_version=STEPS_CODE_VERSION,
        config=plan.config,
        parents=[Parent("candidates", candidates.version)],
        shards=shards,
        settings=plan,
        unit="candidates",
    )
    return run_table(root, plan.dataset, spec)
