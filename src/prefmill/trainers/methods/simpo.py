"""SimPO: TRL's CPOTrainer with loss_type simpo and cpo_alpha 0, on pairs."""

from __future__ import annotations

from typing import Any

from prefmill.trainers.method import TrainLengths, TrainMethod


def trl_args(config: TrainLengths) -> dict[str, Any]:
    return {"max_length": config.max_length, "loss_type": "simpo", "cpo_alpha": 0.0}


METHOD = TrainMethod(
    name="simpo",
    trl_modules=("trl.experimental.cpo", "trl"),
    trl_config="CPOConfig",
    trl_trainer="CPOTrainer",
    table="pairs",
    accepts=("pairs",),
    contract="preference",
    doc="CPOTrainer with loss_type simpo, cpo_alpha 0",
    trl_args=trl_args,
)
