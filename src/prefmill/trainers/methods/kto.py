"""KTO (TRL's KTOTrainer) on points: unpaired desirable / undesirable completions."""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod

METHOD = TrainMethod(
    name="kto",
    trl_modules=("trl", "trl.experimental.kto"),
    trl_config="KTOConfig",
    trl_trainer="KTOTrainer",
    table="points",
    accepts=("points",),
    contract="unpaired",
)
