"""Stage 2: preference evaluation — adjudicators write rows of `judgments`, one shard per
candidates part file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task

from prefmill.engines.registry import parse_spec
from prefmill.errors import InputError, RecipeError
from prefmill.flows.common import (
    SHARD_TASK,
    STAGE_FLOW,
    TableResult,
    Target,
    cached_result,
    candidates_with_prompts,
    log,
    run_shards,
)
from prefmill.flows.incremental import judgments_reuse
from prefmill.progress import reporter
from prefmill.recipe import JudgeConfig, Recipe, file_digest
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.calibration import calibrate
from prefmill.tasks.evaluation.fidelity import enforce, fidelity_report
from prefmill.tasks.evaluation.human import human_judgments
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, judge_shard
from prefmill.tasks.evaluation.judges.human import HumanJudge
from prefmill.tasks.evaluation.judges.registry import fingerprint, judge_engines, judge_traits, resolve_paths

STAGE = "evaluation"


def evaluation_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the judgments version: every judge's full config, in order; for LLM judges also
    the text of their templates and the parser version; the calibration file's content."""
    config: dict[str, Any] = {"judges": [j.model_dump(mode="json") for j in recipe.evaluation.judges]}
    llm = {j.judge_name: fp for j in judge_configs(recipe) if (fp := fingerprint(j)) is not None}
    if llm:
        config["llm"] = llm
    human = [j for j in recipe.evaluation.judges if judge_traits(j).output == "extra_shard"]
    if human:  # the verdicts' content, not the file name, decides the version
        config["human_files"] = [_human_digest(recipe, j) for j in human]
    if (calibration := recipe.evaluation.fidelity.calibration) is not None:
        path = recipe.resolve_path(calibration)
        if not path.is_file():
            raise RecipeError(f"evaluation.fidelity.calibration: no file {path}; fix the path in the recipe")
        config["calibration_sha256"] = file_digest(path)
    return config


def judge_configs(recipe: Recipe) -> list[Any]:
    """The recipe's judges with template paths made absolute (relative to the recipe's folder)."""
    return [resolve_paths(j, recipe.base_dir) for j in recipe.evaluation.judges]


def check_judges_config(recipe: Recipe) -> None:
    """Fail before any work: judge engines parse, templates load and compile, names are unique."""
    names: dict[str, int] = {}
    for i, j in enumerate(judge_configs(recipe)):
        if not judge_traits(j).engine:
            continue
        if j.judge_name in names:
            raise RecipeError(
                f"evaluation.judges[{i}]: judge name '{j.judge_name}' is also the name of "
                f"evaluation.judges[{names[j.judge_name]}]; give one of them another `name`"
            )
        names[j.judge_name] = i
        if getattr(j, "min_score", 0) >= getattr(j, "max_score", 1):
            raise RecipeError(f"evaluation.judges[{i}]: min_score must be below max_score")
        parse_spec(j.engine)
    evaluation_config(recipe)


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
    cands, joined = candidates_with_prompts(
        store, candidates, index, prompts, ["messages", "reference", "rubric"]
    )
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
        result = cached_result(store, done, STAGE)
        enforce_fidelity(recipe, done.stats.get("fidelity"), done.version)
        return result
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
    judges = judge_configs(recipe)
    calls = {i: (root, recipe.dataset, target.version, i, prompts, candidates, judges) for i in todo}
    for _ in run_shards(STAGE, judge_candidates_shard, calls, {i: candidates.files[i].rows for i in todo}):
        pass
    human = [
        (str(recipe.resolve_path(j.path)), j.format)
        for j in recipe.evaluation.judges
        if judge_traits(j).output == "extra_shard"
    ]
    if human and n_shards not in finished:  # one more shard after the candidate shards
        human_shard(root, recipe.dataset, target.version, n_shards, candidates, human)
    total = n_shards + (1 if human else 0)
    writer = target.writer
    paths = [
        writer.shard_path(i) if i not in reuse.borrowed else writer.shard_path_of(reuse.borrowed[i], i)
        for i in range(total)
    ]
    report = fidelity_of(recipe, store, paths, candidates)
    result = target.publish(expected_shards=total, extra_stats={"fidelity": report}, borrowed=reuse.borrowed)
    reporter().stage_finished(STAGE, cached=False)
    enforce_fidelity(recipe, result.stats.get("fidelity"), result.version)
    return result


def fidelity_of(recipe: Recipe, store: Store, paths: list[str], candidates: Manifest) -> dict[str, Any]:
    """The fidelity report of the version's shards at ``paths`` (written or borrowed), and of the
    calibration pairs, if any."""
    judgments = pa.concat_tables([pq.read_table(p, filesystem=store.fs) for p in paths])
    cands = store.read_arrow(candidates, columns=["candidate_id", "response", "n_tokens", "generator"])
    configs = judge_configs(recipe)
    engines = judge_engines(configs)
    calibration = None
    if recipe.evaluation.fidelity.calibration is not None:
        path = recipe.resolve_path(recipe.evaluation.fidelity.calibration)
        calibration = {
            j.judge_name: calibrate_task(j, str(path)) for j in configs if judge_traits(j).calibrated
        }
    report = fidelity_report(
        judgments,
        cands,
        judge_engines=engines,
        gold=recipe.evaluation.fidelity.gold_judges,
        calibration=calibration,
    )
    for warning in report["warnings"]:
        log().warning("evaluation: %s", warning)
    return report


@task(name="calibrate-judge", **SHARD_TASK)
def calibrate_task(config: Any, path: str) -> dict[str, Any]:
    """One LLM judge on the calibration pairs: its accuracy."""
    return calibrate(config, path)


def enforce_fidelity(recipe: Recipe, report: dict[str, Any] | None, version: str) -> None:
    """Raise ``FidelityError`` when a judge fails a threshold of ``evaluation.fidelity``."""
    if report:
        enforce(report, recipe.evaluation.fidelity, f"judgments@{version}")
