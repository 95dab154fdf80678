"""Stage 2: preference evaluation — adjudicators write rows of `judgments`, one shard per
candidates part file (and one more for imported human verdicts).

``plan_evaluation`` resolves the recipe's evaluation section once per build (``EvaluationPlan``);
``evaluation_flow`` runs it on the stage skeleton, then checks the judges' fidelity."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow

from prefmill.engines.registry import parse_spec
from prefmill.errors import InputError, RecipeError
from prefmill.flows.common import STAGE_FLOW, TableResult, Target, candidates_with_prompts, log
from prefmill.flows.incremental import judgments_reuse
from prefmill.flows.stage import Shard, ShardContext, ShardJob, StageSpec, Work, run_jobs, run_table
from prefmill.recipe import FidelityConfig, JudgeConfig, Recipe, file_digest
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.calibration import calibrate
from prefmill.tasks.evaluation.fidelity import enforce, fidelity_report
from prefmill.tasks.evaluation.human import human_judgments
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, judge_shard
from prefmill.tasks.evaluation.judges.human import HumanJudge
from prefmill.tasks.evaluation.judges.registry import fingerprint, judge_engines, judge_traits, resolve_paths

STAGE = "evaluation"


# -- which judges do what (traits of their kind: tasks/evaluation/judges/) ------------------------
def runs_judge_model(judge: Any) -> bool:
    """A judge run by a judge model (engine checked before any work)."""
    return judge_traits(judge).engine


def is_calibrated(judge: Any) -> bool:
    """A judge run on the calibration pairs."""
    return judge_traits(judge).calibrated


def is_human(judge: Any) -> bool:
    """Verdicts imported from a file (one extra shard) instead of judged per shard."""
    return judge_traits(judge).output == "extra_shard"


# -- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationPlan:
    """The evaluation stage, resolved once per build: ``config`` decides the judgments version;
    ``judges`` have absolute template paths; ``human`` lists the verdict files (path, format);
    ``calibration`` is the calibration file's path."""

    dataset: str
    config: dict[str, Any]
    judges: tuple[JudgeConfig, ...]
    human: tuple[tuple[str, str | None], ...]
    calibration: str | None
    fidelity: FidelityConfig


def judge_configs(recipe: Recipe) -> list[Any]:
    """The recipe's judges with template paths made absolute (relative to the recipe's folder)."""
    return [resolve_paths(j, recipe.base_dir) for j in recipe.evaluation.judges]


def evaluation_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the judgments version: every judge's full config, in order; for LLM judges also
    the text of their templates and the parser version; the calibration file's content."""
    config: dict[str, Any] = {"judges": [j.model_dump(mode="json") for j in recipe.evaluation.judges]}
    llm = {j.judge_name: fp for j in judge_configs(recipe) if (fp := fingerprint(j)) is not None}
    if llm:
        config["llm"] = llm
    human = [j for j in recipe.evaluation.judges if is_human(j)]
    if human:  # the verdicts' content, not the file name, decides the version
        config["human_files"] = [_human_digest(recipe, j) for j in human]
    if (calibration := recipe.evaluation.fidelity.calibration) is not None:
        path = recipe.resolve_path(calibration)
        if not path.is_file():
            raise RecipeError(f"evaluation.fidelity.calibration: no file {path}; fix the path in the recipe")
        config["calibration_sha256"] = file_digest(path)
    return config


def plan_evaluation(recipe: Recipe) -> EvaluationPlan:
    calibration = recipe.evaluation.fidelity.calibration
    return EvaluationPlan(
        dataset=recipe.dataset,
        config=evaluation_config(recipe),
        judges=tuple(judge_configs(recipe)),
        human=tuple(
            (str(recipe.resolve_path(j.path)), j.format) for j in recipe.evaluation.judges if is_human(j)
        ),
        calibration=str(recipe.resolve_path(calibration)) if calibration is not None else None,
        fidelity=recipe.evaluation.fidelity,
    )


def check_judges_config(recipe: Recipe) -> None:
    """Fail before any work: judge engines parse, templates load and compile, names are unique."""
    names: dict[str, int] = {}
    for i, j in enumerate(judge_configs(recipe)):
        if not runs_judge_model(j):
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


# -- shard functions -----------------------------------------------------------------------------
def judge(
    ctx: ShardContext, sources: tuple[Manifest, Manifest], plan: EvaluationPlan
) -> tuple[pa.Table, dict[str, Any]]:
    """Judge the candidates of candidates part file ``index`` (input: prompts, candidates)."""
    prompts, candidates = sources
    cands, joined = candidates_with_prompts(
        ctx.store, candidates, ctx.index, prompts, ["messages", "reference", "rubric"]
    )
    started = time.perf_counter()
    judgments = judge_shard(joined, list(plan.judges))
    stats = {"judge_seconds": round(time.perf_counter() - started, 3), "judged_candidates": cands.num_rows}
    return judgments, stats


def human(ctx: ShardContext, candidates: Manifest, plan: EvaluationPlan) -> tuple[pa.Table, dict[str, Any]]:
    """The human verdicts of the plan's files, checked against ``candidates``."""
    known = ctx.store.read_arrow(candidates, columns=["candidate_id", "prompt_id"])
    table = pa.concat_tables([human_judgments(Path(path), fmt, known) for path, fmt in plan.human])
    return table, {"human_verdicts": table.num_rows}


def calibration(ctx: ShardContext, judge_config: Any, path: str) -> dict[str, Any]:
    """One LLM judge on the calibration pairs: its accuracy."""
    return calibrate(judge_config, path)


# -- the flow ------------------------------------------------------------------------------------
@flow(name="prefmill-evaluation", **STAGE_FLOW)
def evaluation_flow(plan: EvaluationPlan, root: str, prompts: Manifest, candidates: Manifest) -> TableResult:
    store = Store(root)

    def shards(target: Target) -> Work:
        reuse = judgments_reuse(store, plan.dataset, plan.config, prompts, candidates)
        n = len(candidates.files)
        work = Work(
            [
                Shard(i, judge, (prompts, candidates), candidates.files[i].rows, "judge-shard")
                for i in range(n)
                if i not in reuse.borrowed
            ],
            total=n + (1 if plan.human else 0),
            borrowed=reuse.borrowed,
            parents=reuse.parents("judgments"),
        )
        if plan.human:  # one more shard after the candidate shards
            work.shards.append(Shard(n, human, candidates, 0, "import-human-verdicts"))
        return work

    def finish(target: Target, work: Work, finished: set[int]) -> dict[str, Any]:
        writer = target.writer
        paths = [
            writer.shard_path_of(work.borrowed[i], i) if i in work.borrowed else writer.shard_path(i)
            for i in range(work.expected)
        ]
        return {"fidelity": fidelity_of(plan, root, paths, candidates)}

    spec = StageSpec(
        stage=STAGE,
        table="judgments",
        code_version=EVALUATION_CODE_VERSION,
        config=plan.config,
        parents=[Parent("prompts", prompts.version), Parent("candidates", candidates.version)],
        shards=shards,
        settings=plan,
        unit="candidates",
        finish=finish,
    )
    result = run_table(root, plan.dataset, spec)
    enforce_fidelity(plan, result.stats.get("fidelity"), result.version)
    return result


def fidelity_of(plan: EvaluationPlan, root: str, paths: list[str], candidates: Manifest) -> dict[str, Any]:
    """The fidelity report of the version's shards at ``paths`` (written or borrowed), and of the
    calibration pairs, if any (each calibrated judge is one task on the task runner)."""
    store = Store(root)
    judgments = pa.concat_tables([pq.read_table(p, filesystem=store.fs) for p in paths])
    cands = store.read_arrow(candidates, columns=["candidate_id", "response", "n_tokens", "generator"])
    engines = judge_engines(plan.judges)  # the judges the self-preference check names
    accuracy = None
    if plan.calibration is not None:
        calibrated = [j for j in plan.judges if is_calibrated(j)]
        jobs = {
            n: ShardJob(
                root,
                plan.dataset,
                "calibration",
                Shard(n, calibration, j, 0, "calibrate-judge"),
                plan.calibration,
            )
            for n, j in enumerate(calibrated)
        }
        done = dict(run_jobs("calibration", jobs))
        accuracy = {j.judge_name: done[n] for n, j in enumerate(calibrated)}
    report = fidelity_report(
        judgments,
        cands,
        judge_engines=engines,
        gold=plan.fidelity.gold_judges,
        calibration=accuracy,
    )
    for warning in report["warnings"]:
        log().warning("evaluation: %s", warning)
    return report


def enforce_fidelity(plan: EvaluationPlan, report: dict[str, Any] | None, version: str) -> None:
    """Raise ``FidelityError`` when a judge fails a threshold of ``evaluation.fidelity``."""
    if report:
        enforce(report, plan.fidelity, f"judgments@{version}")
