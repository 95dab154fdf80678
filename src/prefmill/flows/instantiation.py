"""Stage 3: preference instantiation — DuckDB SQL over prompts, candidates and judgments builds
`pairs`, `points` and `lists`. Only the parameters an output's SQL uses enter its version, so
changing ``label_threshold`` rebuilds `points` alone, and no stage before this one."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow

from prefmill.errors import InputError
from prefmill.flows.common import STAGE_FLOW, TableResult
from prefmill.flows.plans.instantiation import OutputPlan, output_config  # noqa: F401 (output_config: re-exported)
from prefmill.flows.stage import Shard, ShardContext, StageSpec, Work, run_stage
from prefmill.storage import Manifest, Parent
from prefmill.storage.duck import configure, lock_down, scratch_dir, session, version_paths
from prefmill.storage.hints import command
from prefmill.tasks.instantiation.embeddings import embed_candidates
from prefmill.tasks.instantiation.empty import diagnose, empty_reason
from prefmill.tasks.instantiation.output_stats import output_stats  # noqa: F401 (re-exported)
from prefmill.tasks.instantiation.run import (
    INSTANTIATION_CODE_VERSION,
    InstantiatedStream,
    bind_steps,
    instantiate_stream,
)

STAGE = "instantiation"


def build_output(
    ctx: ShardContext, sources: dict[str, Manifest], plan: OutputPlan
) -> tuple[Iterator[pa.Table], dict[str, Any]]:
    """The output's rows: its SQL over the prompts, candidates and judgments versions, run in DuckDB
    under the plan's memory limit (spilling to the dataset's scratch folder) and handed to the writer
    in batches, and their stats: filled in as the last batch goes (the writer writes them after the
    rows; with none kept, the reason is among them). The connection and its scratch folder go then."""
    scratch = scratch_dir(ctx.store, ctx.dataset)
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f"{plan.output}-", dir=scratch)
    con = session(ctx.store, ctx.dataset, versions=sources)
    try:
        configure(con, memory_limit=plan.memory_limit, temp_directory=scratch)
        if plan.sql_text is not None or plan.selection[0] is not None:  # a recipe's own SQL: locked
            lock_down(con, version_paths(ctx.store, list(sources.values())), [scratch] if scratch else [])
        if "diverse" in plan.params.get("strategies", []):
            embed_candidates(con)
        if "step_dpo" in plan.params.get("strategies", []):
            bind_steps(con, _steps_of(ctx.store, sources["judgments"]))
        stream = instantiate_stream(
            con,
            plan.output,
            plan.params,
            plan.sql_text,
            sql_file=plan.sql_file,
            selection_text=plan.selection[0],
            selection_file=plan.selection[1],
        )
    except BaseException:
        _close(con, scratch)
        raise
    stats: dict[str, Any] = {}
    return _batches_then_close(stream, scratch, stats, ctx, plan), stats


def _steps_of(store: Any, judgments: Manifest) -> pa.Table:
    """The steps version the judgments were made from (its step labels refer to those steps)."""
    steps = next((p for p in judgments.parents if p.table == "steps"), None)
    if steps is None:
        raise InputError(
            f"instantiation.pair_strategies: step_dpo needs step labels, and judgments@{judgments.version} "
            "was made without steps; add a `steps` section and step-level judges (rollout, ...)"
        )
    return store.read_arrow(store.manifest(judgments.dataset, "steps", steps.version))


def _close(con: Any, scratch: str | None) -> None:
    con.close()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


def _batches_then_close(
    stream: InstantiatedStream,
    scratch: str | None,
    stats: dict[str, Any],
    ctx: ShardContext,
    plan: OutputPlan,
) -> Iterator[pa.Table]:
    try:
        yield from stream.batches()
        stats.update(stream.stats.result(stream.removed))
        if stream.rows == 0:  # say why, in the manifest, the summary and the report
            hint = command("report", "fidelity", root=ctx.store.root, dataset=ctx.dataset)
            stats["empty_reason"] = empty_reason(
                plan.output, stream.removed, diagnose(stream.con), plan.params, hint
            )
    finally:
        _close(stream.con, scratch)


@flow(name="prefmill-instantiation", **STAGE_FLOW)
def instantiation_flow(
    outputs: tuple[OutputPlan, ...],
    root: str,
    dataset: str,
    prompts: Manifest,
    candidates: Manifest,
    judgments: Manifest,
) -> list[TableResult]:
    """One version per output (each output one shard; they run together on the task runner)."""
    sources = {"prompts": prompts, "candidates": candidates, "judgments": judgments}
    parents = [Parent(t, m.version) for t, m in sources.items()]
    specs = [
        StageSpec(
            stage=STAGE,
            table=plan.output,
            code_version=INSTANTIATION_CODE_VERSION,
            config=plan.config,
            parents=parents,
            shards=lambda target: Work([Shard(0, build_output, sources, 1, "instantiate-output")]),
            settings=plan,
            unit="tables",
        )
        for plan in outputs
    ]
    return run_stage(root, dataset, specs)
