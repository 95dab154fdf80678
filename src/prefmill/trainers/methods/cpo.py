"""CPO (TRL's CPOTrainer, experimental in recent TRL) on pairs."""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod

METHOD = TrainMethod(
    name="cpo",
    trl_modules=("trl.experimental.cpo", "trl"),
    trl_config="CPOConfig",
    trl_trainer="CPOTrainer",
    table="pairs",
    accepts=("pairs",),
    contract="preference",
)
