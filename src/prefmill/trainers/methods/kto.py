"""KTO (TRL's KTOTrainer) on points: unpaired desirable / undesirable completions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from prefmill.trainers.method import TrainMethod, TrainSection

#: TRL's advice for KTO: desirable_weight x desirable rows / (undesirable_weight x undesirable rows)
#: between 1 and 4/3. Balancing aims inside that band, so TRL's own check (bounds rounded to 2
#: decimals) passes too.
BALANCE_BAND = (1.0, 4 / 3)
_AIM = 1.15


class KTOOptions(TrainSection):
    """The ``train:`` options only KTO reads."""

    class_balance: bool = Field(
        default=True,
        description="kto: weight the rarer label so that desirable_weight x desirable rows / "
        "(undesirable_weight x undesirable rows) falls in TRL's recommended 1 to 4/3 (verifier labels "
        "are often mostly wrong); desirable_weight / undesirable_weight in `trl_args` win.",
    )


def class_weights(desirable: int, undesirable: int) -> dict[str, float]:
    """KTO's two class weights for ``desirable`` / ``undesirable`` rows: {} when the ratio is already
    in ``BALANCE_BAND`` (or one class is absent); else the rarer class's weight, the other left at 1."""
    if not desirable or not undesirable:
        return {}
    ratio = desirable / undesirable
    low, high = BALANCE_BAND
    if low <= ratio <= high:
        return {}
    if ratio < low:
        return {"desirable_weight": round(_AIM / ratio, 2)}
    return {"undesirable_weight": round(ratio / _AIM, 2)}


def data_args(config: KTOOptions, rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not config.class_balance:
        return {}
    desirable = sum(1 for r in rows if r.get("label"))
    return class_weights(desirable, len(rows) - desirable)


METHOD = TrainMethod(
    name="kto",
    trl_modules=("trl", "trl.experimental.kto"),
    trl_config="KTOConfig",
    trl_trainer="KTOTrainer",
    table="points",
    accepts=("points",),
    contract="unpaired",
    options=KTOOptions,
    data_args=data_args,
)
