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
from prefect import flow, task

from prefmill.engines.registry import get_engine
from prefmill.flows.common import (
    SHARD_TASK,
    STAGE_FLOW,
    TableResult,
    Target,
    cached_result,
    candidates_with_prompts,
)
from prefmill.flows.evaluation import evaluation_config, judge_configs
from prefmill.progress import reporter
from prefmill.recipe import Recipe
from prefmill.storage import Manifest, Parent, Store
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation.judges.critique_revise import CritiqueReviseJudge
from prefmill.tasks.evaluation.judges.registry import judge_traits
from prefmill.tasks.evaluation.revise import critique_revise

STAGE = "revision"
#: Bump when the revision rows for the same candidates change meaning.
REVISION_CODE_VERSION = "1"


def revisers(recipe: Recipe) -> list[CritiqueReviseJudge]:
    return [j for j in judge_configs(recipe) if judge_traits(j).output == "candidates"]


@task(name="revise-shard", **SHARD_TASK)
def revise_shard(
    root: str,
    dataset: str,
    version: str,
    index: int,
    prompts: Manifest,
    candidates: Manifest,
    configs: list[CritiqueReviseJudge],
) -> dict[str, Any]:
    """Shard ``index`` of ``candidates`` followed by every reviser's revisions of it."""
    store = Store(root)
    cands, joined = candidates_with_prompts(store, candidates, index, prompts, ["messages"])
    cands = conform("candidates", cands)
    started = time.perf_counter()
    parts = [cands]
    for config in configs:
        revised = critique_revise(config, joined, get_engine(config.engine))
        parts.append(revised.cast(cands.schema))
        reporter().advance(STAGE, units=revised.num_rows)
    out = pa.concat_tables(parts)
    stats = {
        "revise_seconds": round(time.perf_counter() - started, 3),
        "revisions": out.num_rows - cands.num_rows,
    }
    store.open_version(dataset, "candidates", version).write_shard(index, out, stats=stats)
    return stats


@flow(name="prefmill-revision", **STAGE_FLOW)
def revision_flow(recipe: Recipe, root: str, prompts: Manifest, candidates: Manifest) -> TableResult | None:
    """The candidates version with revisions, or None when the recipe has no critique_revise judge."""
    configs = revisers(recipe)
    if not configs:
        return None
    store = Store(root)
    llm = evaluation_config(recipe).get("llm", {})
    target = Target.open(
        store,
        recipe.dataset,
        "candidates",
        stage=STAGE,
        code_version=REVISION_CODE_VERSION,
        config={
            "revisers": [
                c.model_dump(mode="json")
                for c in recipe.evaluation.judges
                if judge_traits(c).output == "candidates"
            ],
            "templates": {c.judge_name: llm.get(c.judge_name) for c in configs},
        },
        parents=[Parent("prompts", prompts.version), Parent("candidates", candidates.version)],
    )
    if (done := target.existing) is not None:
        return cached_result(store, done, STAGE)
    n_shards = len(candidates.files)
    finished = set(target.writer.finished_shards())
    todo = [i for i in range(n_shards) if i not in finished]
    reporter().stage_started(
        STAGE,
        shards=n_shards,
        done=len(finished),
        units=sum(candidates.files[i].rows for i in todo) * len(configs),
        unit="revisions",
    )
    for i in todo:
        revise_shard(root, recipe.dataset, target.version, i, prompts, candidates, configs)
        reporter().shard_done(STAGE)
    result = target.publish(expected_shards=n_shards)
    reporter().stage_finished(STAGE, cached=False)
    return result
