"""DPO (TRL's DPOTrainer) on pairs; IPO and DPO's other variants are its ``loss_type``s."""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod

METHOD = TrainMethod(
    name="dpo",
    trl_modules=("trl",),
    trl_config="DPOConfig",
    trl_trainer="DPOTrainer",
    table="pairs",
    accepts=("pairs",),
    contract="preference",
    doc="DPOTrainer; IPO and the other variants via `loss_type`",
    loss_list=True,
)
