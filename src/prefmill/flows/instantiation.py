"""Stage 3: preference instantiation — DuckDB SQL over prompts, candidates and judgments builds
`pairs`, `points` and `lists`. Only the parameters an output's SQL uses enter its version, so
changing ``label_threshold`` rebuilds `points` alone, and no stage before this one."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task

from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, TableResult, Target, log
from prefmill.progress import reporter
from prefmill.recipe import Recipe
from prefmill.sql import JUDGMENT_MACROS, read_sql
from prefmill.storage import Manifest, Parent, Store
from prefmill.storage.duck import session
from prefmill.tasks.instantiation.embeddings import EMBEDDING_MODEL, embed_candidates
from prefmill.tasks.instantiation.params import sql_params
from prefmill.tasks.instantiation.run import (
    INSTANTIATION_CODE_VERSION,
    instantiate_with_report,
    sql_parameters,
)

STAGE = "instantiation"


def recipe_params(recipe: Recipe) -> dict[str, Any]:
    """Every SQL parameter the recipe sets, by its $name in the SQL files."""
    return sql_params(recipe.instantiation, recipe.seed)


def output_config(recipe: Recipe, output: str) -> tuple[dict[str, Any], str | None]:
    """The version config of one output: its SQL's hash and the parameters that SQL uses (for pairs,
    the selection SQL's too; criterion weights and the embedding model when they change the rows)."""
    custom = recipe.sql_text(output)
    text = custom if custom is not None else read_sql(output)
    scores = read_sql("scores")
    where = recipe.instantiation.sql.get(output, f"{output}.sql")  # type: ignore[call-overload]
    used = sql_parameters(text, where=where) | sql_parameters(scores, where="scores.sql")
    parts = [scores, text]
    parts.insert(0, read_sql(JUDGMENT_MACROS))  # usable_judgments() and swap_pairs(), read by both
    custom_selection = None
    if output == "pairs":
        custom_selection = recipe.sql_text("selection")
        selection = custom_selection if custom_selection is not None else read_sql("selection")
        swhere = recipe.instantiation.sql.get("selection", "selection.sql")
        used |= sql_parameters(selection, where=swhere)
        parts.append(selection)
    params = {k: v for k, v in recipe_params(recipe).items() if k in used}
    if recipe.instantiation.criterion_weights:
        params["criterion_weights"] = dict(sorted(recipe.instantiation.criterion_weights.items()))
    params["aggregation"] = recipe.evaluation.aggregation  # read by scores.sql as a DuckDB variable
    digest = hashlib.sha256("\n-- next --\n".join(parts).encode()).hexdigest()
    config: dict[str, Any] = {
        "output": output,
        "sql_sha256": digest,
        "custom_sql": custom is not None,
        "params": params,
    }
    if custom_selection is not None:
        config["custom_selection_sql"] = True
    if "diverse" in params.get("strategies", []):
        config["embedding_model"] = EMBEDDING_MODEL
    return config, custom


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


@task(name="instantiate-output", **SHARD_TASK)
def build_output(
    root: str,
    dataset: str,
    output: str,
    version: str,
    sources: dict[str, Manifest],
    params: dict[str, Any],
    sql_text: str | None,
    sql_file: str | None,
    selection: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    store = Store(root)
    con = session(store, dataset, versions=sources)
    try:
        if "diverse" in params.get("strategies", []):
            embed_candidates(con)
        result = instantiate_with_report(
            con,
            output,
            params,
            sql_text,
            sql_file=sql_file,
            selection_text=selection[0],
            selection_file=selection[1],
        )
    finally:
        con.close()
    table = result.table
    stats = output_stats(output, table, result.removed)
    store.open_version(dataset, output, version).write_shard(0, table, stats=stats)
    return stats


@flow(name="prefmill-instantiation", **STAGE_FLOW)
def instantiation_flow(
    recipe: Recipe, root: str, prompts: Manifest, candidates: Manifest, judgments: Manifest
) -> list[TableResult]:
    store = Store(root)
    sources = {"prompts": prompts, "candidates": candidates, "judgments": judgments}
    parents = [Parent(t, m.version) for t, m in sources.items()]
    outputs = list(recipe.instantiation.outputs)
    reporter().stage_started(STAGE, shards=len(outputs), done=0, units=len(outputs), unit="tables")
    results = []
    for output in outputs:
        config, custom_sql = output_config(recipe, output)
        target = Target.open(
            store,
            recipe.dataset,
            output,
            stage=STAGE,
            code_version=INSTANTIATION_CODE_VERSION,
            config=config,
            parents=parents,
        )
        if (done := target.existing) is not None:
            log().info("%s: cached %s@%s (%d rows)", STAGE, done.table, done.version, done.rows)
            results.append(TableResult.of(store, done, cached=True, started=target.started))
        else:
            sql_file = recipe.instantiation.sql.get(output)  # type: ignore[call-overload]
            selection = (None, None)
            if output == "pairs":
                selection = (recipe.sql_text("selection"), recipe.instantiation.sql.get("selection"))
            build_output(
                root,
                recipe.dataset,
                output,
                target.version,
                sources,
                config["params"],
                custom_sql,
                sql_file,
                selection,
            )
            results.append(target.publish(expected_shards=1))
        reporter().advance(STAGE, units=1)
        reporter().shard_done(STAGE)
    reporter().stage_finished(STAGE, cached=all(r.cached for r in results))
    return results
