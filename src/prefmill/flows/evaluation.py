"""Stage 2: preference evaluation — adjudicators write rows of `judgments`, one shard per
candidates part file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from prefmill.errors import InputError
from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, TableResult, Target, cached_result
from prefmill.progress import reporter
from prefmill.recipe import HumanJudge, JudgeConfig, Recipe, file_digest
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.human import human_judgments
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, judge_shard

STAGE = "evaluation"


def evaluation_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the judgments version: every judge's full config, in order."""
    config: dict[str, Any] = {"judges": [j.model_dump(mode="json") for j in recipe.evaluation.judges]}
    human = [j for j in recipe.evaluation.judges if isinstance(j, HumanJudge)]
    if human:  # the verdicts' content, not the file name, decides the version
        config["human_files"] = [_human_digest(recipe, j) for j in human]
    return config


def _human_digest(recipe: Recipe, judge: HumanJudge) -> str:
    path = recipe.resolve_path(judge.path)
    try:
        return file_digest(path)
    except OSError as exc:
        raise InputError(
            f"evaluation.judges[human].path: cannot read {path} ({exc.strerror}); fix the path"
        ) from None


@task(name="import-human-verdicts", **SHARD_TASK)
def human_shard(
    root: str,
    dataset: str,
    version: str,
    index: int,
    candidates: Manifest,
    files: list[tuple[str, str | None]],
) -> dict[str, Any]:
    """Write judgments shard ``index``: the human verdicts of ``files`` ((path, format) pairs)."""
    store = Store(root)
    known = store.read_arrow(candidates, columns=["candidate_id", "prompt_id"])
    parts = [human_judgments(Path(path), fmt, known) for path, fmt in files]
    table = pa.concat_tables(parts)
    store.open_version(dataset, "judgments", version).write_shard(
        index, table, stats={"human_verdicts": table.num_rows}
    )
    return {"human_verdicts": table.num_rows}


@task(name="judge-shard", **SHARD_TASK)
def judge_candidates_shard(
    root: str,
    dataset: str,
    version: str,
    index: int,
    prompts: Manifest,
    candidates: Manifest,
    judges: list[JudgeConfig],
) -> dict[str, Any]:
    """Judge the candidates of one candidates part file and write judgments shard ``index``."""
    store = Store(root)
    cands = pq.read_table(store.file_paths(candidates)[index], filesystem=store.fs)
    refs = store.read_arrow(prompts, columns=["prompt_id", "reference", "messages"])
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
    todo = [i for i in range(n_shards) if i not in finished]
    reporter().stage_started(
        STAGE,
        shards=n_shards,
        done=len(finished),
        units=sum(candidates.files[i].rows for i in todo),
        unit="candidates",
    )
    for i in todo:
        judge_candidates_shard(
            root, recipe.dataset, target.version, i, prompts, candidates, list(recipe.evaluation.judges)
        )
        reporter().shard_done(STAGE)
    human = [
        (str(recipe.resolve_path(j.path)), j.format)
        for j in recipe.evaluation.judges
        if isinstance(j, HumanJudge)
    ]
    if human and n_shards not in finished:  # one more shard after the candidate shards
        human_shard(root, recipe.dataset, target.version, n_shards, candidates, human)
    result = target.publish(expected_shards=n_shards + (1 if human else 0))
    reporter().stage_finished(STAGE, cached=False)
    return result
