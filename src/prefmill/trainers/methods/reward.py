"""A reward model (TRL's RewardTrainer) on pairs, with each pair's margin passed as ``margin``."""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod

METHOD = TrainMethod(
    name="reward",
    trl_modules=("trl",),
    trl_config="RewardConfig",
    trl_trainer="RewardTrainer",
    table="pairs",
    accepts=("pairs",),
    contract="preference",
    doc="RewardTrainer, pairs' margin passed as `margin`",
    task_type="SEQ_CLS",
    with_margin=True,
)
