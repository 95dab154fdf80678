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
import pyarrow.compute as pc
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
from prefmill.tasks.instantiation.output_stats import stream_stats
from prefmill.tasks.instantiation.run import (
    INSTANTIATION_CODE_VERSION,
    InstantiatedStream,
    bind_steps,
    instantiate_stream,
)

STAGE = "instantiation"


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    return {
        str(c["values"]): int(c["counts"])
        for c in sorted(pc.value_counts(table.column(column)).to_pylist(), key=lambda c: str(c["values"]))
    }


def output_stats(output: str, table: pa.Table, removed: dict[str, int] | None = None) -> dict[str, Any]:
    """Numbers a reader wants next to the table: label balance, groups, prompts covered, and what
    selection removed and why (``removed``, with ``rows_before_selection``)."""
    stats: dict[str, Any] = {}
    if removed is not None:
        stats["rows_before_selection"] = table.num_rows + sum(removed.values())
        stats["removed"] = dict(removed)
    if table.num_rows == 0:
        return stats
    stats["prompts"] = pc.count_distinct(table.column("prompt_id")).as_py()
    if "criterion" in table.column_names:
        stats["criteria"] = _counts(table, "criterion")
    if output == "points":
        desirable = pc.sum(pc.cast(table.column("label"), pa.int64())).as_py() or 0
        undesirable = table.num_rows - desirable
        stats.update(desirable=desirable, undesirable=undesirable)
        stats["desirable_ratio"] = round(desirable / undesirable, 6) if undesirable else None
    if output == "pairs":
        stats["mean_margin"] = round(pc.mean(table.column("margin")).as_py() or 0.0, 6)
        stats["strategies"] = _counts(table, "strategy")
    if output == "lists" and "zero_variance" in table.column_names:
        stats["zero_variance_groups"] = int(
            pc.sum(pc.cast(table.column("zero_variance"), pa.int64())).as_py()
        )
    return stats


def build_output(
    ctx: ShardContext, sources: dict[str, Manifest], plan: OutputPlan
) -> tuple[Iterator[pa.Table], dict[str, Any]]:
    """The output's rows: its SQL over the prompts, candidates and judgments versions, kept in DuckDB
    under the plan's memory limit (spilling to the dataset's scratch folder) and handed to the writer
    in batches; the connection and its scratch folder go when the last batch is written."""
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
        stats = stream_stats(stream)
        if stream.rows == 0:  # say why, in the manifest, the summary and the report
            hint = command("report", "fidelity", root=ctx.store.root, dataset=ctx.dataset)
            stats["empty_reason"] = empty_reason(
                plan.output, stream.removed, diagnose(con), plan.params, hint
            )
    except BaseException:
        _close(con, scratch)
        raise
    return _batches_then_close(stream, scratch), stats


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


def _batches_then_close(stream: InstantiatedStream, scratch: str | None) -> Iterator[pa.Table]:
    try:
        yield from stream.batches()
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
