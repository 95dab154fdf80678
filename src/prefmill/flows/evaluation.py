"""Stage 2: preference evaluation — adjudicators write rows of `judgments`, one shard per
candidates part file."""

from __future__ import annotations

import time
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from prefect import flow, task

from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, TableResult, Target, cached_result, run_shards
from prefmill.flows.incremental import judgments_reuse
from prefmill.progress import reporter
from prefmill.recipe import Recipe
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, judge_shard

STAGE = "evaluation"


def evaluation_config(recipe: Recipe) -> dict[str, Any]:
    return {"judges": list(recipe.evaluation.judges)}


@task(name="judge-shard", **SHARD_TASK)
def judge_candidates_shard(
    root: str,
    dataset: str,
    version: str,
    index: int,
    prompts: Manifest,
    candidates: Manifest,
    judges: list[str],
) -> dict[str, Any]:
    """Judge the candidates of one candidates part file and write judgments shard ``index``."""
    store = Store(root)
    cands = pq.read_table(store.file_paths(candidates)[index], filesystem=store.fs)
    refs = store.read_arrow(prompts, columns=["prompt_id", "reference"])
    joined = pl.from_arrow(cands).join(pl.from_arrow(refs), on="prompt_id", how="left").to_arrow()
    started = time.perf_counter()
    judgments = judge_shard(joined, judges)
    stats = {"judge_seconds": round(time.perf_counter() - started, 3), "judged_candidates": cands.num_rows}
    store.open_version(dataset, "judgments", version).write_shard(index, judgments, stats=stats)
    reporter().advance(STAGE, units=cands.num_rows)
    return stats


@flow(name="prefmill-evaluation", **STAGE_FLOW)
def evaluation_flow(recipe: Recipe, root: str, prompts: Manifest, candidates: Manifest) -> TableResult:
    store = Store(root)
    config = evaluation_config(recipe)
    target = Target.open(
        store,
        recipe.dataset,
        "judgments",
        stage=STAGE,
        code_version=EVALUATION_CODE_VERSION,
        config=config,
        parents=[Parent("prompts", prompts.version), Parent("candidates", candidates.version)],
    )
    if (done := target.existing) is not None:
        return cached_result(store, done, STAGE)
    writer = target.writer
    n_shards = len(candidates.files)
    finished = set(writer.finished_shards())
    reuse = judgments_reuse(store, recipe.dataset, config, prompts, candidates)
    target.parents += reuse.parents("judgments")
    todo = [i for i in range(n_shards) if i not in finished and i not in reuse.borrowed]
    reporter().stage_started(
        STAGE,
        shards=n_shards,
        done=len(finished),
        units=sum(candidates.files[i].rows for i in todo),
        unit="candidates",
    )
    judges = config["judges"]
    calls = {i: (root, recipe.dataset, target.version, i, prompts, candidates, judges) for i in todo}
    for _ in run_shards(STAGE, judge_candidates_shard, calls, {i: candidates.files[i].rows for i in todo}):
        pass
    result = target.publish(expected_shards=n_shards, borrowed=reuse.borrowed)
    reporter().stage_finished(STAGE, cached=False)
    return result
