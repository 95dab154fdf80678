"""The synthesis stage's slice of a build's plan and its shard functions: generate a shard, retry a
shard's failed rows, top up a shard an earlier version holds part of (incremental builds).

Each function is ``(ShardContext, input, SynthesisPlan) -> (candidates, stats)``; ``flows.stage``
writes the shard. The input names the rows: the prompts version (the shard is the prompts
``[index*shard_size, (index+1)*shard_size)``), and for a retry or a top-up the earlier version.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefmill.engines.registry import get_engine
from prefmill.flows.plans.synthesis import SynthesisPlan
from prefmill.flows.stage import ShardContext
from prefmill.storage import Manifest
from prefmill.tasks.synthesis.offline import check_matched, read_offline
from prefmill.tasks.synthesis.run import EngineFor, ShardPlan, synthesize_shard
from prefmill.tasks.synthesis.run import retry_shard as retry_shard_rows


def engines(plan: SynthesisPlan) -> EngineFor:
    """``engine_for`` of ``synthesize_shard``, with the plan's price table."""
    prices = plan.prices
    return lambda spec, batch_size: get_engine(spec, batch_size=batch_size, prices=prices)


def check_offline(shard: ShardPlan, prompts: pa.Table) -> int:
    """Read every offline source once and check its prompts against the prompts table, before any
    generation; returns how many rows ``on_unmatched: skip`` drops."""
    known = set(prompts.column("prompt_id").to_pylist())
    return sum(check_matched(imp.spec, read_offline(imp.spec), known) for imp in shard.offline)


def _prompt_rows(ctx: ShardContext, prompts_version: str, size: int) -> pa.Table:
    return ctx.store.read_rows(ctx.manifest("prompts", prompts_version), ctx.index * size, size)


def _tokens(candidates: pa.Table) -> int:
    """Tokens generated in a candidates shard (for the progress display's tokens/s)."""
    return int(pc.sum(candidates.column("n_tokens")).as_py() or 0)


def _generated(candidates: pa.Table, minus: pa.Table | None = None) -> dict[str, Any]:
    """What of a shard this run generated, when it keeps earlier rows (``minus``: the rows it started
    from): the build summary counts it as generated, not the whole shard."""
    out = {}
    for column, key in (("n_tokens", "generated_tokens"), ("cost_usd", "generated_cost_usd")):
        total = (pc.sum(candidates.column(column)).as_py() or 0) if column in candidates.column_names else 0
        if minus is not None and column in minus.column_names:
            total -= pc.sum(minus.column(column)).as_py() or 0
        out[key] = max(total, 0)
    return out


def generate(ctx: ShardContext, prompts_version: str, plan: SynthesisPlan) -> tuple[pa.Table, dict[str, Any]]:
    """The candidates of the shard's prompts."""
    shard = _prompt_rows(ctx, prompts_version, plan.shard_size)
    started = time.perf_counter()
    candidates, stats = synthesize_shard(shard, plan.shard, engines(plan), progress=ctx.progress())
    stats = {"generate_seconds": round(time.perf_counter() - started, 3), **stats}
    ctx.advance(tokens=_tokens(candidates))
    return candidates, stats


def retry(
    ctx: ShardContext, previous: tuple[Manifest, str], plan: SynthesisPlan
) -> tuple[pa.Table, dict[str, Any]]:
    """Shard ``index`` of the earlier version with its failed rows generated again (input: that
    version and the prompts version)."""
    failed, prompts_version = previous
    old = pq.read_table(ctx.store.file_paths(failed)[ctx.index], filesystem=ctx.store.fs)
    prompts = ctx.store.read_arrow(ctx.manifest("prompts", prompts_version))
    started = time.perf_counter()
    candidates, retried = retry_shard_rows(old, prompts, plan.shard, engines(plan), progress=ctx.progress())
    stats = {
        "generate_seconds": round(time.perf_counter() - started, 3),
        "requests": retried,
        "retried": retried,
        **_generated(candidates, minus=old),
    }
    return candidates, stats


def top_up(
    ctx: ShardContext, source: tuple[str, Manifest, int], plan: SynthesisPlan
) -> tuple[pa.Table, dict[str, Any]]:
    """The rows of an earlier version's shard (input: prompts version, that version, its shard index)
    plus candidates for the prompts it lacks, in the order a fresh shard has (prompt order, then
    sample order)."""
    prompts_version, old, old_index = source
    shard = _prompt_rows(ctx, prompts_version, plan.shard_size)
    kept = pq.read_table(ctx.store.file_paths(old)[old_index], filesystem=ctx.store.fs)
    have = pc.unique(kept.column("prompt_id"))
    todo = shard.filter(pc.invert(pc.is_in(shard.column("prompt_id"), value_set=have)))
    started = time.perf_counter()
    fresh, _ = synthesize_shard(todo, plan.shard, engines(plan), progress=ctx.progress())
    merged = pa.concat_tables([kept, fresh.cast(kept.schema)]) if fresh.num_rows else kept
    order = {pid: n for n, pid in enumerate(shard.column("prompt_id").to_pylist())}
    rank = pa.array([order[p] for p in merged.column("prompt_id").to_pylist()], pa.int64())
    merged = merged.append_column("_rank", rank).sort_by(
        [("_rank", "ascending"), ("sample_index", "ascending")]
    )
    merged = merged.drop_columns(["_rank"])
    stats = {
        "generate_seconds": round(time.perf_counter() - started, 3),
        "requests": fresh.num_rows,
        "reused_rows": kept.num_rows,
        **_generated(fresh),
    }
    return merged, stats
