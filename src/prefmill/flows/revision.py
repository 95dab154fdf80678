"""Constitutional critique-revise, before the judges: a new `candidates` version holding the original
candidates and one revision of each (``origin = 'revision'``, ``parent_id`` = the original).

Each shard of the new version is the matching shard of the old one followed by its revisions, so
every candidate of a prompt stays in one shard (the heuristic and pair-wise judges compare a prompt's
candidates with each other). The new version's parents are the prompts and the old candidates
version, so `prefmill lineage` shows where the revisions came from; the build's ref points at it and
instantiation pairs revisions with their originals like any other candidates.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
from prefect import flow

from prefmill.engines.registry import get_engine, priced
from prefmill.flows.common import STAGE_FLOW, TableResult, Target, candidates_with_prompts
from prefmill.flows.plans.revision import REVISION_CODE_VERSION, RevisionPlan
from prefmill.flows.runners import engines_feed
from prefmill.flows.stage import Shard, ShardContext, StageSpec, Work, run_table
from prefmill.progress import metered
from prefmill.storage import Manifest, Parent
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation.revise import critique_revise

STAGE = "revision"


def revise(
    ctx: ShardContext, sources: tuple[Manifest, Manifest], plan: RevisionPlan
) -> tuple[pa.Table, dict[str, Any]]:
    """Shard ``index`` of the candidates (input: prompts, candidates) followed by every reviser's
    revisions of it."""
    prompts, candidates = sources
    cands, joined = candidates_with_prompts(ctx.store, candidates, ctx.index, prompts, ["messages"])
    cands = conform("candidates", cands)
    started = time.perf_counter()
    parts = [cands]
    with priced(plan.prices), metered() as made:  # critiques, revisions: the originals came before
        for config in plan.revisers:
            revised = critique_revise(config, joined, get_engine(config.engine))
            parts.append(revised.cast(cands.schema))
            ctx.advance(units=revised.num_rows)
    out = pa.concat_tables(parts)
    stats = {
        "revise_seconds": round(time.perf_counter() - started, 3),
        "revisions": out.num_rows - cands.num_rows,
        "generated_tokens": made.tokens,
        "generated_cost_usd": made.cost_usd,
    }
    return out, stats


@flow(name="prefmill-revision", **STAGE_FLOW)
def revision_flow(
    plan: RevisionPlan | None, root: str, prompts: Manifest, candidates: Manifest
) -> TableResult | None:
    """The candidates version with revisions, or None when the recipe has no critique_revise judge."""
    if plan is None:
        return None
    per_row = len(plan.revisers)

    def shards(target: Target) -> Work:
        return Work(
            [
                Shard(i, revise, (prompts, candidates), f.rows * per_row, "revise-shard")
                for i, f in enumerate(candidates.files)
            ]
        )

    spec = StageSpec(
        stage=STAGE,
        table="candidates",
        code_version=REVISION_CODE_VERSION,
        config=plan.config,
        parents=[Parent("prompts", prompts.version), Parent("candidates", candidates.version)],
        shards=shards,
        settings=plan,
        unit="revisions",
        **engines_feed((c.engine, None) for c in plan.revisers),
    )
    return run_table(root, plan.dataset, spec)
