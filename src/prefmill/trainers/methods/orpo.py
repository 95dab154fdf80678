"""ORPO (TRL's ORPOTrainer, experimental in recent TRL) on pairs."""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod

METHOD = TrainMethod(
    name="orpo",
    trl_modules=("trl.experimental.orpo", "trl"),
    trl_config="ORPOConfig",
    trl_trainer="ORPOTrainer",
    table="pairs",
    accepts=("pairs",),
    contract="preference",
    doc="experimental trainers, where the installed TRL has them",
)
