"""Stage 1: response synthesis — k candidates per prompt from a policy engine, shard by shard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, task

from prefmill.engines.registry import get_engine
from prefmill.errors import InputError
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
from prefmill.ids import content_id
from prefmill.progress import reporter
from prefmill.recipe import Recipe, file_digest
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.synthesis.offline import OfflineSpec, check_matched, read_offline
from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION
from prefmill.tasks.synthesis.run import OfflineImport, ShardPlan, synthesize_shard
from prefmill.tasks.synthesis.run import retry_shard as retry_shard_rows

STAGE = "synthesis"


def _source_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents)."""
    if path.is_file():
        return file_digest(path)
    parts = [[str(f.relative_to(path)), file_digest(f)] for f in sorted(path.rglob("*")) if f.is_file()]
    return content_id(parts)


def synthesis_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the candidates version: every policy's engine, sampling and strategy settings,
    each offline source's options and content hash, the reweighting and diversity settings, the seed
    and the shard size. Batch sizes are left out: they change speed, not rows."""
    s = recipe.synthesis
    policies = []
    for p in s.resolved_policies():
        entry: dict[str, Any] = {
            "name": p.name,
            "engine": p.engine,
            "k": p.k,
            "temperatures": p.temperatures,
            "top_p": p.top_ps,
            "max_new_tokens": p.max_new_tokens,
            "strategy": p.strategy,
        }
        if p.strategy == "best_of_n":
            entry["best_of_n"] = s.best_of_n.model_dump()
        elif p.strategy == "verbalized":
            entry["verbalized"] = s.verbalized.model_dump()
        policies.append(entry)
    offline = []
    for i, o in enumerate(s.offline):
        path = recipe.resolve_path(o.path)
        if not path.exists():
            raise InputError(
                f"offline responses not found: {path} (recipe field synthesis.offline[{i}].path); "
                "fix the path"
            )
        offline.append({**o.model_dump(), "path": path.name, "sha256": _source_digest(path)})
    return {
        "policies": policies,
        "offline": offline,
        "policy_engine": s.policy_engine,
        "diversity": s.diversity.model_dump() if s.diversity else None,
        "seed": recipe.seed,
        "shard_size": recipe.shard_size,
    }


def _offline_specs(recipe: Recipe) -> list[OfflineImport]:
    return [
        OfflineImport(
            OfflineSpec(
                path=str(recipe.resolve_path(o.path)),
                format=o.format,
                prompt_field=o.prompt_field,
                messages_field=o.messages_field,
                response_field=o.response_field,
                model_field=o.model_field,
                rating_field=o.rating_field,
                generator=o.generator,
                on_unmatched=o.on_unmatched,
            ),
            o.data_policy,
        )
        for o in recipe.synthesis.offline
    ]


def shard_plan(recipe: Recipe) -> ShardPlan:
    """The recipe's synthesis section as the plain settings a shard task runs with."""
    s = recipe.synthesis
    return ShardPlan(
        seed=recipe.seed,
        policies=s.resolved_policies(),
        offline=_offline_specs(recipe),
        best_of_n_budget=s.best_of_n.budget,
        best_of_n_min_accepted=s.best_of_n.min_accepted,
        best_of_n_accept=s.best_of_n.accept,
        verbalized_n=s.verbalized.n,
        verbalized_template=s.verbalized.template,
        policy_engine=s.policy_engine,
        duplicate_threshold=s.diversity.near_duplicate_threshold if s.diversity else None,
        low_spread=s.diversity.low_spread if s.diversity else 0.05,
        score_batch_size=s.batch_size,
    )


def _engine_for(spec: str, batch_size: int, prices: dict[str, Any] | None = None) -> Any:
    return get_engine(spec, batch_size=batch_size, prices=prices)


def _engines(recipe: Recipe) -> Any:
    """``engine_for`` of ``synthesize_shard`` with the recipe's price table (openai engines' cost)."""
    prices = {m: p.model_dump() for m, p in recipe.prices.items()} or None
    return lambda spec, batch_size: _engine_for(spec, batch_size, prices)


def _progress() -> Any:
    return lambda n: reporter().advance(STAGE, units=n)


def check_offline(recipe: Recipe, prompts: pa.Table) -> int:
    """Read every offline source once and check its prompts against the prompts table, before any
    generation; returns how many rows ``on_unmatched: skip`` drops."""
    known = set(prompts.column("prompt_id").to_pylist())
    return sum(check_matched(imp.spec, read_offline(imp.spec), known) for imp in _offline_specs(recipe))


def _tokens(candidates: pa.Table) -> int:
    """Tokens generated in a candidates shard (for the progress display's tokens/s)."""
    return int(pc.sum(candidates.column("n_tokens")).as_py() or 0)


@task(name="generate-shard", **SHARD_TASK)
def generate_shard(
    root: str, dataset: str, version: str, index: int, prompts_version: str, recipe: Recipe
) -> dict[str, Any]:
    """Generate the candidates of prompts [index*shard_size, (index+1)*shard_size) and write the shard."""
    store = Store(root)
    prompts = store.read_arrow(store.manifest(dataset, "prompts", prompts_version))
    shard = prompts.slice(index * recipe.shard_size, recipe.shard_size)
    started = time.perf_counter()
    candidates, stats = synthesize_shard(shard, shard_plan(recipe), _engines(recipe), progress=_progress())
    stats = {"generate_seconds": round(time.perf_counter() - started, 3), **stats}
    reporter().advance(STAGE, tokens=_tokens(candidates))
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
    started = time.perf_counter()
    candidates, retried = retry_shard_rows(
        old, prompts, shard_plan(recipe), _engines(recipe), progress=_progress()
    )
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
    unmatched = (
        check_offline(recipe, store.read_arrow(prompts, columns=["prompt_id"]))
        if recipe.synthesis.offline
        else 0
    )
    n_shards = max(1, -(-prompts.rows // recipe.shard_size))
    finished = set(writer.finished_shards())
    reuse = candidates_reuse(store, recipe.dataset, target.config, prompts, recipe.shard_size, n_shards)
    target.parents += reuse.parents("candidates")
    todo = [i for i in range(n_shards) if i not in finished and i not in reuse.borrowed]
    if finished:
        log().info("synthesis: resuming candidates@%s, %d of %d shards done", vid, len(finished), n_shards)
    remaining = sum(min(recipe.shard_size, prompts.rows - i * recipe.shard_size) for i in todo)
    per_prompt = sum(p.k for p in recipe.synthesis.resolved_policies())
    reporter().stage_started(
        STAGE, shards=n_shards, done=len(finished), units=remaining * per_prompt, unit="samples"
    )
    calls = {
        i: (root, recipe.dataset, vid, i, prompts.version, recipe) for i in todo if i not in reuse.top_up
    }
    size = recipe.shard_size
    units = {i: min(size, prompts.rows - i * size) * per_prompt for i in todo}
    for i, stats in run_shards(STAGE, generate_shard, calls, units):
        log().info("synthesis: shard %d/%d written (%s)", i + 1, n_shards, stats)
    tops = top_up_calls(reuse, store, root, recipe, vid, prompts.version, todo)
    for _ in run_shards(STAGE, top_up_shard, tops):
        pass
    extra: dict[str, Any] = {"resumed_shards": len(finished)}
    if recipe.synthesis.offline:
        extra["offline_unmatched"] = unmatched
    result = target.publish(expected_shards=n_shards, extra_stats=extra, borrowed=reuse.borrowed)
    reporter().stage_finished(STAGE, cached=False)
    return result
