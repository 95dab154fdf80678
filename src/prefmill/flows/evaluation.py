"""Stage 2: preference evaluation — adjudicators write rows of `judgments`, one shard per
candidates part file (and one more for imported human verdicts).

``plan_evaluation`` resolves the recipe's evaluation section once per build (``EvaluationPlan``);
``evaluation_flow`` runs it on the stage skeleton, then checks the judges' fidelity."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow

from prefmill.engines.registry import priced
from prefmill.flows.common import STAGE_FLOW, TableResult, Target, candidates_with_prompts, log
from prefmill.flows.incremental import judgments_reuse
from prefmill.flows.plans.evaluation import EvaluationPlan, is_calibrated, runs_judge_model
from prefmill.flows.runners import engines_feed
from prefmill.flows.stage import Shard, ShardContext, ShardJob, StageSpec, Work, run_jobs, run_table
from prefmill.progress import metered, portions
from prefmill.storage import Manifest, Parent, Store
from prefmill.storage.hints import command
from prefmill.tasks.evaluation.calibration import calibrate
from prefmill.tasks.evaluation.fidelity import enforce, fidelity_report
from prefmill.tasks.evaluation.human import human_judgments
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, judge_shard
from prefmill.tasks.evaluation.judges.registry import judge_engines

STAGE = "evaluation"


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
    calls = sum(1 for j in plan.judges if runs_judge_model(j))  # engine calls: the bar moves per batch
    advance = portions(lambda n: ctx.advance(units=n), cands.num_rows, calls)
    with priced(plan.prices), advance, metered() as made:
        judgments = judge_shard(joined, list(plan.judges))  # made: what the judges' models generated
    stats = {
        "judge_seconds": round(time.perf_counter() - started, 3),
        "judged_candidates": cands.num_rows,
        "generated_tokens": made.tokens,
        "generated_cost_usd": made.cost_usd,
    }
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
def evaluation_flow(
    plan: EvaluationPlan, root: str, prompts: Manifest, candidates: Manifest, steps: Manifest | None = None
) -> TableResult:
    """The judgments of ``candidates``; ``steps`` (the steps stage's version, when the recipe has one)
    becomes a parent, so that the step labels' export finds the judgments made from it."""
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
        parents=[Parent("prompts", prompts.version), Parent("candidates", candidates.version)]
        + ([Parent("steps", steps.version)] if steps is not None else []),
        shards=shards,
        settings=plan,
        unit="candidates",
        finish=finish,
        **engines_feed(
            (j.engine, getattr(j, "batch_size", None)) for j in plan.judges if runs_judge_model(j)
        ),
    )
    result = run_table(root, plan.dataset, spec)
    enforce_fidelity(plan, result.stats.get("fidelity"), result.version, root)
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


def enforce_fidelity(
    plan: EvaluationPlan, report: dict[str, Any] | None, version: str, root: str | None = None
) -> None:
    """Raise ``FidelityError`` when a judge fails a threshold of ``evaluation.fidelity``."""
    if report:
        where = f"judgments@{version}"
        hint = command("report", "fidelity", where, root=root, dataset=plan.dataset)
        enforce(report, plan.fidelity, where, hint)
