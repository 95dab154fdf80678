"""`prefmill check RECIPE`: validate a recipe and everything it names -- prompt, offline and verdict
files, custom SQL, engine specs, judge templates, export formats -- without starting Prefect or
loading a model, and work out the build's plan: per stage its shards and the model calls it expects.

The checks are the build's own preflight (``flows.build.preflight``), so a recipe that passes here
fails a build only on what needs the models or the data (a parse failure, a fidelity threshold). The
counts are upper bounds where the work depends on the outcome (best-of-n stops early once accepted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefmill.recipe import Recipe


@dataclass
class StagePlan:
    """One stage of the plan: what it makes and how much work that is."""

    stage: str
    table: str
    shards: int
    rows: int | None = None
    calls: int | None = None
    engines: list[str] = field(default_factory=list)
    note: str = ""


def _prompt_count(plan: Any) -> int:
    from prefmill.tasks.prompts.build import combine
    from prefmill.tasks.prompts.sources.registry import load_source

    prompts, _ = combine([load_source(s, Path) for s in plan.prompts.sources])
    return prompts.num_rows


def _offline_rows(recipe: Recipe) -> int:
    from prefmill.tasks.synthesis.offline import OfflineSpec, read_offline

    total = 0
    for source in recipe.synthesis.offline:
        spec = source.model_dump(include=set(OfflineSpec.__dataclass_fields__))
        spec["path"] = str(recipe.resolve_path(source.path))
        total += read_offline(OfflineSpec(**spec)).num_rows
    return total


def _synthesis(recipe: Recipe, prompts: int) -> StagePlan:
    calls, rows, notes = 0, 0, []
    for p in recipe.synthesis.resolved_policies():
        if p.strategy == "best_of_n" and p.best_of_n is not None:
            calls += prompts * p.best_of_n.budget
            rows += prompts * p.best_of_n.budget
            notes.append(f"{p.name or p.engine}: best-of-n, at most {p.best_of_n.budget} samples a prompt")
        elif p.strategy == "verbalized" and p.verbalized is not None:
            calls += prompts * p.k
            rows += prompts * p.k * p.verbalized.n
        else:
            calls += prompts * p.k
            rows += prompts * p.k
    offline = _offline_rows(recipe)
    if offline:
        notes.append(f"{offline} offline responses")
    engines = sorted({p.engine for p in recipe.synthesis.resolved_policies()})
    shards = math.ceil(prompts / recipe.shard_size) if prompts else 0
    return StagePlan("synthesis", "candidates", shards, rows + offline, calls, engines, "; ".join(notes))


def _judge_calls(judge: Any, candidates: int, per_prompt: float, prompts: int) -> int | None:
    """Model calls of one judge over ``candidates`` (``per_prompt`` of them per prompt)."""
    kind = judge.kind
    if kind == "llm" and judge.mode == "pair":
        pairs = math.comb(max(round(per_prompt), 0), 2)
        if judge.max_pairs_per_prompt is not None:
            pairs = min(pairs, judge.max_pairs_per_prompt)
        return prompts * pairs * (2 if judge.swap else 1)
    if kind in ("llm", "reward_model"):
        return candidates
    if kind == "critique_revise":
        return 2 * candidates
    if kind == "meta":
        return None  # only the items the other judges disagree on
    return 0


def plan_of(recipe: Recipe) -> list[StagePlan]:
    """Check ``recipe`` as a build would before any work, and return its plan."""
    from prefmill.flows.build import preflight

    plan = preflight(recipe, recipe.storage_root(None))
    prompts = _prompt_count(plan)
    shards = math.ceil(prompts / recipe.shard_size) if prompts else 0
    stages = [
        StagePlan("prompts", "prompts", len(recipe.prompts.sources), prompts, 0, [], "one shard per source")
    ]
    synthesis = _synthesis(recipe, prompts)
    stages.append(synthesis)
    candidates = synthesis.rows or 0
    per_prompt = candidates / prompts if prompts else 0.0
    judges = []
    calls = 0
    engines: set[str] = set()
    unknown = False
    for j in recipe.evaluation.judges:
        n = _judge_calls(j, candidates, per_prompt, prompts)
        name = getattr(j, "judge_name", j.kind)
        judges.append(f"{name}: {'?' if n is None else n} calls" if n else name)
        if n is None:
            unknown = True
        calls += n or 0
        if getattr(j, "engine", None) and n:
            engines.add(j.engine)
        if j.kind == "reward_model":
            engines.add(f"reward model {j.model}")
    note = ", ".join(judges) + (" (meta: as many as disagreements)" if unknown else "")
    stages.append(StagePlan("evaluation", "judgments", shards, None, calls, sorted(engines), note))
    for output in plan.outputs:
        stages.append(StagePlan("instantiation", output.output, 1, None, 0, [], "SQL over the judgments"))
    return stages
