"""A process reward model: token classification at the step separators on the transformers
``Trainer`` (TRL 1.16 has no PRM trainer any more; ``prefmill.trainers.prm`` does what its removed
``PRMTrainer`` did). Reads a steps version and the step-level judgments made from it, as TRL's
stepwise-supervision rows (``prompt``, ``completions``, ``labels``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from prefmill.trainers.method import TrainMethod, TrainSection


class PRMOptions(TrainSection):
    """The ``train:`` options only the PRM reads."""

    step_separator: str = Field(
        default="\n",
        min_length=1,
        description="prm: text put after the prompt and after each step; the model is trained to "
        "classify the last token of the separator after a step (saved with the model).",
    )
    train_on_last_step_only: bool = Field(
        default=False,
        description="prm: learn only the last step's label (an outcome label), not every step's.",
    )


def trl_args(config: PRMOptions) -> dict[str, Any]:
    return {"remove_unused_columns": False}


METHOD = TrainMethod(
    name="prm",
    trl_modules=("transformers",),
    trl_config="TrainingArguments",
    trl_trainer="Trainer",
    table="steps",
    accepts=("steps",),
    contract="stepwise",
    doc="process reward model: token classification at the step separators on transformers' Trainer",
    task_type="TOKEN_CLS",
    trl_args=trl_args,
    options=PRMOptions,
)
