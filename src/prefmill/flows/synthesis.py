"""Stage 1: response synthesis — k candidates per prompt from a policy engine, shard by shard.

``plan_synthesis`` resolves the recipe's synthesis section once per build (``SynthesisPlan``);
``synthesis_flow`` runs it on the stage skeleton: generated shards, shards borrowed or topped up
from earlier versions (``flows.incremental``), and ``--retry-errors`` as a version of its own whose
shards without errors are borrowed from the version it retries.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
from prefect import flow

from prefmill.flows.common import STAGE_FLOW, TableResult, Target, cached_result, latest_retry, log
from prefmill.flows.incremental import candidates_reuse
from prefmill.flows.plans.synthesis import SynthesisPlan, plan_synthesis, synthesis_config
from prefmill.flows.runners import engines_feed
from prefmill.flows.stage import Shard, StageSpec, Work, run_table
from prefmill.flows.synthesis_shards import check_offline, generate, retry, top_up
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION

STAGE = "synthesis"

__all__ = ["STAGE", "SynthesisPlan", "plan_synthesis", "synthesis_config", "synthesis_flow"]


def _feed(plan: SynthesisPlan) -> dict[str, Any]:
    """Requests the policies' engines take at once (the shard window follows from it), and whether
    their shards run in lockstep groups."""
    return engines_feed((p.engine, p.batch_size) for p in plan.shard.policies)


def _spec(plan: SynthesisPlan, root: str, prompts: Manifest, retry_errors: bool) -> StageSpec:
    store = Store(root)
    found: dict[str, int] = {}

    def shards(target: Target) -> Work:
        if plan.shard.offline:
            found["unmatched"] = check_offline(plan.shard, store.read_arrow(prompts, columns=["prompt_id"]))
        size = plan.shard_size
        n_shards = max(1, -(-prompts.rows // size))
        reuse = candidates_reuse(store, plan.dataset, target.config, prompts, size, n_shards)
        work = Work([], total=n_shards, borrowed=reuse.borrowed, parents=reuse.parents("candidates"))
        for i in range(n_shards):
            units = min(size, prompts.rows - i * size) * plan.per_prompt
            if i in reuse.top_up:
                version, j = reuse.top_up[i]
                old = store.manifest(plan.dataset, "candidates", version)
                work.shards.append(Shard(i, top_up, (prompts.version, old, j), units, "top-up-shard"))
            elif i not in reuse.borrowed:
                work.shards.append(Shard(i, generate, prompts.version, units, "generate-shard"))
        work.shards.sort(key=lambda s: s.task != "generate-shard")  # new shards first, then top-ups
        return work

    def finish(target: Target, work: Work, finished: set[int]) -> dict[str, Any]:
        extra: dict[str, Any] = {"resumed_shards": len(finished)}
        if plan.shard.offline:
            extra["offline_unmatched"] = found.get("unmatched", 0)
        return extra

    def existing(done: Manifest) -> TableResult:
        done = latest_retry(store, done)
        if retry_errors and done.totals.get("errors"):
            return run_table(root, plan.dataset, _retry_spec(plan, store, spec, done, prompts))
        return cached_result(store, done, STAGE)

    spec = StageSpec(
        stage=STAGE,
        table="candidates",
        code_version=SYNTHESIS_CODE_VERSION,
        config=plan.config,
        parents=[Parent("prompts", prompts.version)],
        shards=shards,
        settings=plan,
        unit="samples",
        finish=finish,
        existing=existing,
        **_feed(plan),
    )
    return spec


def _retry_spec(
    plan: SynthesisPlan, store: Store, base: StageSpec, failed: Manifest, prompts: Manifest
) -> StageSpec:
    """A new candidates version that re-attempts only ``failed``'s error rows; shards without errors
    are borrowed from ``failed``."""
    sources = sorted({f.version or failed.version for f in failed.files})

    def shards(target: Target) -> Work:
        paths = store.file_paths(failed)
        errors = [
            f.rows - pq.read_table(path, columns=["error"], filesystem=store.fs).column("error").null_count
            for f, path in zip(failed.files, paths, strict=True)
        ]
        log().info("synthesis: retrying %d failed rows of candidates@%s", sum(errors), failed.version)
        return Work(
            [Shard(i, retry, (failed, prompts.version), n, "retry-shard") for i, n in enumerate(errors) if n],
            total=len(paths),
            borrowed={i: failed.files[i].version or failed.version for i, n in enumerate(errors) if not n},
        )

    return StageSpec(
        stage=STAGE,
        table="candidates",
        code_version=SYNTHESIS_CODE_VERSION,
        config={**base.config, "retry_of": failed.version},
        parents=[*base.parents, *(Parent("candidates", v) for v in sorted({failed.version, *sources}))],
        shards=shards,
        settings=plan,
        unit="retries",
        **_feed(plan),
    )


@flow(name="prefmill-synthesis", **STAGE_FLOW)
def synthesis_flow(
    plan: SynthesisPlan, root: str, prompts: Manifest, retry_errors: bool = False
) -> TableResult:
    """The candidates version of ``prompts`` (with ``retry_errors``: its failed rows re-attempted)."""
    return run_table(root, plan.dataset, _spec(plan, root, prompts, retry_errors))
