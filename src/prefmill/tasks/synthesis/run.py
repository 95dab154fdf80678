"""One synthesis shard with every strategy of the recipe: the online policies (sample, best-of-n,
verbalized), the offline imports, reweighting log-probs and diversity marking, in that order.

``synthesize_shard`` is pure apart from the engines it asks ``engine_for`` for; ``retry_shard`` re-runs
only a shard's failed rows (each with the policy and strategy that made it) and re-scores / re-marks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import Engine, Progress
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.synthesis.best_of_n import best_of_n, verify
from prefmill.tasks.synthesis.config import DiversityConfig, ResolvedPolicy
from prefmill.tasks.synthesis.diversity import diversity, diversity_stats
from prefmill.tasks.synthesis.offline import OfflineSpec, import_offline, read_offline
from prefmill.tasks.synthesis.online import synthesize
from prefmill.tasks.synthesis.reweight import score_into
from prefmill.tasks.synthesis.verbalized import verbalize

EngineFor = Callable[[str, int], Engine]
"""``(engine spec, batch size) -> engine`` (the flow passes ``registry.get_engine``)."""


@dataclass(frozen=True)
class OfflineImport:
    """An offline source and the engine spec of its data policy, if known."""

    spec: OfflineSpec
    data_policy: str | None = None


@dataclass(frozen=True, kw_only=True)
class ShardPlan:
    """Everything a synthesis shard needs besides its prompts: the synthesis stage's slice of a
    build's plan (``flows.synthesis.plan_synthesis``). Each policy carries its strategy's settings."""

    seed: int
    policies: Sequence[ResolvedPolicy] = ()
    offline: Sequence[OfflineImport] = ()
    policy_engine: str | None = None
    diversity: DiversityConfig | None = None
    score_batch_size: int


def _policy(
    plan: ShardPlan,
    prompts: pa.Table,
    p: ResolvedPolicy,
    engine: Engine,
    progress: Progress | None,
    only: set[tuple[str, int]] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    common = {
        "temperatures": p.temperatures,
        "top_p": p.top_ps,
        "max_new_tokens": p.max_new_tokens,
        "seed": plan.seed,
        "policy": p.name,
        "progress": progress,
    }
    if p.strategy == "verbalized":
        assert p.verbalized is not None
        n = p.verbalized.n
        out = verbalize(prompts, engine, k=p.k, n=n, template=p.verbalized.template, only=only, **common)
        return out, {"verbalized_calls": len({(a, b // n) for a, b in _keys(out)})}
    if p.strategy == "best_of_n":
        assert p.best_of_n is not None
        bon = p.best_of_n
        if only is not None:  # a retry: the failed samples again, judged again; no new rounds
            out = synthesize(prompts, engine, k=bon.budget, only=only, strategy="best_of_n", **common)
            return out, {}
        return best_of_n(
            prompts,
            engine,
            k=p.k,
            budget=bon.budget,
            accept=bon.accept,
            min_accepted=bon.min_accepted,
            **common,
        )
    return synthesize(prompts, engine, k=p.k, only=only, **common), {}


def _keys(t: pa.Table) -> list[tuple[str, int]]:
    return list(zip(t.column("prompt_id").to_pylist(), t.column("sample_index").to_pylist(), strict=True))


def _finish(
    plan: ShardPlan, cands: pa.Table, prompts: pa.Table, engine_for: EngineFor, rescore: bool
) -> tuple[pa.Table, dict[str, Any]]:
    """Data-policy and target-policy log-probs, then near-duplicate marking and diversity stats."""
    stats: dict[str, Any] = {}
    if plan.policy_engine is None and all(imp.data_policy is None for imp in plan.offline):
        messages: dict[str, Any] = {}  # nothing to score: the prompts' messages are not read
    else:
        messages = dict(
            zip(prompts.column("prompt_id").to_pylist(), prompts.column("messages").to_pylist(), strict=True)
        )
    policies = cands.column("policy").to_pylist() if plan.offline else []
    for imp in plan.offline:
        if imp.data_policy is None:
            continue
        mask = [p == imp.spec.label for p in policies]
        if rescore:
            mask = [m and v is None for m, v in zip(mask, cands.column("logprob").to_pylist(), strict=True)]
        engine = engine_for(imp.data_policy, plan.score_batch_size)
        cands, n = score_into(cands, messages, engine, "logprob", mask)
        stats["data_policy_scored"] = stats.get("data_policy_scored", 0) + n
    if plan.policy_engine is not None:
        mask = None
        if rescore:
            mask = [v is None for v in cands.column("policy_logprob").to_pylist()]
        engine = engine_for(plan.policy_engine, plan.score_batch_size)
        cands, stats["policy_scored"] = score_into(cands, messages, engine, "policy_logprob", mask)
    if plan.diversity is not None:
        cands, report = diversity(cands, threshold=plan.diversity.near_duplicate_threshold)
        stats.update(diversity_stats(report, low_spread=plan.diversity.low_spread))
    return cands, stats


def synthesize_shard(
    prompts: pa.Table,
    plan: ShardPlan,
    engine_for: EngineFor,
    *,
    progress: Progress | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """The candidates of one prompts shard and their stats (numbers, summed over shards).

    Rows: each online policy's candidates in recipe order (prompt order within), then each offline
    source's rows for these prompts (unmatched rows were checked by the flow beforehand)."""
    parts: list[pa.Table] = []
    stats: dict[str, Any] = {}
    for p in plan.policies:
        engine = engine_for(p.engine, p.batch_size)
        out, s = _policy(plan, prompts, p, engine, progress)
        parts.append(out)
        for key, value in s.items():
            stats[key] = stats.get(key, 0) + value
    pids = prompts.column("prompt_id").to_pylist()
    for imp in plan.offline:
        part = import_offline(imp.spec, read_offline(imp.spec), pids)
        stats["offline_rows"] = stats.get("offline_rows", 0) + part.num_rows
        parts.append(part)
    cands = pa.concat_tables(parts) if parts else empty_table("candidates")
    stats["requests"] = sum(
        t.num_rows for t, p in zip(parts, plan.policies, strict=False) if p.strategy != "verbalized"
    ) + stats.get("verbalized_calls", 0)
    cands, more = _finish(plan, cands, prompts, engine_for, rescore=False)
    stats.update(more)
    return conform("candidates", cands, where="synthesis"), stats


def retry_shard(
    previous: pa.Table,
    prompts: pa.Table,
    plan: ShardPlan,
    engine_for: EngineFor,
    *,
    progress: Progress | None = None,
) -> tuple[pa.Table, int]:
    """``previous`` with each failed row generated again by the policy and strategy that made it (same
    seeds); a verbalized call that now parses replaces its error row with its responses. Log-probs are
    filled in for the new rows and near-duplicates re-marked. Returns the shard and how many failed
    rows were retried."""
    errors = previous.column("error").to_pylist()
    if all(e is None for e in errors):
        return previous, 0
    by_name = {p.name: p for p in plan.policies}
    rows = previous.to_pylist()
    failed: dict[str | None, set[tuple[str, int]]] = {}
    for row in rows:
        if row["error"] is not None and row["policy"] in by_name:
            unit = row["sample_index"] // by_name[row["policy"]].verbalized_n
            failed.setdefault(row["policy"], set()).add((row["prompt_id"], unit))
    fresh: dict[tuple[str | None, str, int], list[dict[str, Any]]] = {}
    references = dict(
        zip(prompts.column("prompt_id").to_pylist(), prompts.column("reference").to_pylist(), strict=True)
    )
    for name, only in failed.items():
        p = by_name[name]
        wanted = prompts.filter(pc.is_in(prompts.column("prompt_id"), pa.array(sorted({a for a, _ in only}))))
        out, _ = _policy(plan, wanted, p, engine_for(p.engine, p.batch_size), progress, only=only)
        if p.strategy == "best_of_n":
            index = out.column_names.index("accepted")
            out = out.set_column(
                index, out.schema.field(index), pa.array(verify(out, references), pa.bool_())
            )
        for row in out.to_pylist():
            unit = row["sample_index"] // p.verbalized_n
            fresh.setdefault((name, row["prompt_id"], unit), []).append(row)
    merged: list[dict[str, Any]] = []
    for row in rows:
        if row["error"] is None:
            merged.append(row)
            continue
        policy = by_name.get(row["policy"])
        strategy = policy.strategy if policy is not None else None
        unit = row["sample_index"] // policy.verbalized_n if policy is not None else row["sample_index"]
        new = fresh.get((row["policy"], row["prompt_id"], unit))
        if not new:
            merged.append(row)
            continue
        for r in new:
            if strategy == "best_of_n":
                r["attempts"] = row["attempts"]
        merged += new
    table = pa.Table.from_pylist(merged, schema=previous.schema)
    table, _ = _finish(plan, table, prompts, engine_for, rescore=True)
    return conform("candidates", table, where="retry"), sum(len(v) for v in failed.values())
