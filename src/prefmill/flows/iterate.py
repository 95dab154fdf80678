"""The `iterate` flow: the closed loop build -> train -> build with the new policy (DESIGN §4).

Round r builds the recipe into ref ``round-r`` of the same dataset, with synthesis sampling from
round r-1's checkpoint (``transformers:/path/to/checkpoint``; round 1 samples with the recipe's own
engine, so it reuses a plain ``prefmill build`` of the recipe), then trains round r-1's checkpoint
(round 1: ``train.base_model``) on the pairs it built. Each round has its own table versions (the
engine, hence the candidates version, differs per round) and its own checkpoint, whose lineage names
the pairs it was trained on and the checkpoint it continued.

Modes: ``dpo`` (iterative DPO: the train section's method on the round's pairs) and ``spin``
(self-play: pairs from ``sql/spin.sql``, chosen = the reference answer, rejected = each policy sample,
trained with DPO).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from prefect import flow

from prefmill.errors import RecipeError
from prefmill.flows.build import build_flow, preflight
from prefmill.flows.common import STAGE_FLOW, current_flow_run_id, log
from prefmill.flows.startup import start_local_api
from prefmill.flows.train import TrainSummary, resolve_base, train_flow
from prefmill.recipe import ArithmeticSource, Recipe
from prefmill.storage import Store
from prefmill.trainers.config import IterateConfig, TrainConfig
from prefmill.trainers.methods import METHODS

ROUND_REF = "round-{r}"


@dataclass
class RoundSummary:
    """One round: the policy it sampled from, what it built and the checkpoint it trained."""

    round: int
    ref: str
    policy: str  # engine spec of the round's synthesis
    candidates: str
    pairs: str
    pairs_rows: int
    train: TrainSummary


@dataclass
class IterateSummary:
    dataset: str
    root: str
    mode: str
    rounds: list[RoundSummary] = field(default_factory=list)
    seconds: float = 0.0
    flow_run_id: str | None = None

    def accuracy_curve(self) -> list[tuple[str, float | None]]:
        """(model, held-out accuracy): the starting policy, then each round's checkpoint."""
        if not self.rounds:
            return []
        first = self.rounds[0].train
        curve = [(first.base_model, first.accuracy_before)]
        curve += [
            (f"round {r.round}: checkpoints@{r.train.checkpoint}", r.train.accuracy_after)
            for r in self.rounds
        ]
        return curve


def spin_sql_path() -> str:
    """The packaged spin.sql as a file path (the recipe's instantiation.sql takes paths)."""
    return str(resources.files("prefmill.sql").joinpath("spin.sql"))


def round_recipe(recipe: Recipe, r: int, policy: str | None, it: IterateConfig) -> Recipe:
    """The recipe of round ``r``: sampling from ``policy`` (None: the recipe's engine), arithmetic
    seeds shifted by r-1 when ``fresh_prompts``, and spin.sql as the pairs SQL in spin mode."""
    update: dict[str, Any] = {}
    if policy is not None:
        update["synthesis"] = recipe.synthesis.model_copy(update={"engine": policy})
    if it.fresh_prompts and r > 1:
        sources = [
            s.model_copy(update={"seed": s.seed + r - 1}) if isinstance(s, ArithmeticSource) else s
            for s in recipe.prompts.sources
        ]
        update["prompts"] = recipe.prompts.model_copy(update={"sources": sources})
    inst = recipe.instantiation
    if "pairs" not in inst.outputs:
        inst = inst.model_copy(update={"outputs": [*inst.outputs, "pairs"]})
    if it.mode == "spin":
        inst = inst.model_copy(update={"sql": {**inst.sql, "pairs": spin_sql_path()}})
    update["instantiation"] = inst
    return recipe.model_copy(update=update)


def round_train_config(train: TrainConfig, r: int, base: str, mode: str) -> TrainConfig:
    update: dict[str, Any] = {"base_model": base, "ref": ROUND_REF.format(r=r), "table": "pairs"}
    if mode == "spin":
        update["method"] = "dpo"
    return train.model_copy(update=update)


@flow(name="prefmill-iterate", **STAGE_FLOW)
def iterate_flow(recipe: Recipe, root: str, train: TrainConfig, it: IterateConfig) -> IterateSummary:
    started = time.perf_counter()
    store = Store(root)
    summary = IterateSummary(recipe.dataset, store.root, it.mode, flow_run_id=current_flow_run_id())
    base, policy = train.base_model, None
    for r in range(1, it.rounds + 1):
        ref = ROUND_REF.format(r=r)
        built = build_flow(round_recipe(recipe, r, policy, it), root, ref=ref)
        pairs = next(t for t in built.tables if t.table == "pairs")
        log().info(
            "iterate: round %d built pairs@%s (%d rows) with %s",
            r,
            pairs.version,
            pairs.rows,
            policy or recipe.synthesis.engine,
        )
        trained = train_flow(round_train_config(train, r, base, it.mode), root, recipe.dataset)
        summary.rounds.append(
            RoundSummary(
                round=r,
                ref=ref,
                policy=policy or recipe.synthesis.engine,
                candidates=built.version("candidates"),
                pairs=pairs.version,
                pairs_rows=pairs.rows,
                train=trained,
            )
        )
        base, policy = f"checkpoints@{trained.checkpoint}", f"transformers:{trained.path}"
    summary.seconds = time.perf_counter() - started
    return summary


def run_iterate(
    recipe: Recipe,
    root: str | None = None,
    *,
    train: TrainConfig | None = None,
    it: IterateConfig | None = None,
) -> IterateSummary:
    """Check the loop's inputs up front, then run it."""
    from prefmill.trainers.runner import trainer_classes

    train = train or recipe.train or TrainConfig()
    it = it or recipe.iterate or IterateConfig()
    on_pairs = [m.name for m in METHODS.values() if m.contract == "preference" and m.generates]
    if it.mode == "dpo" and train.method not in on_pairs:
        raise RecipeError(
            "iterate: mode dpo trains on each round's pairs, so train.method must be "
            f"{', '.join(on_pairs[:-1])} or {on_pairs[-1]} (got {train.method}); use mode: spin or change "
            "train.method"
        )
    if it.mode == "spin" and "arithmetic" not in recipe.evaluation.judge_kinds:
        raise RecipeError(
            "iterate: mode spin scores samples with the arithmetic judge; add it to evaluation.judges"
        )
    target = recipe.storage_root(root)
    preflight(recipe, target)
    if not train.base_model.startswith("checkpoints@"):
        resolve_base(Store(target), recipe.dataset, train.base_model)
    trainer_classes("dpo" if it.mode == "spin" else train.method)
    start_local_api()
    return iterate_flow(recipe, target, train, it)
