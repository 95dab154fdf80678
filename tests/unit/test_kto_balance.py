"""KTO's class weights from the rows (TRL's 1 to 4/3 band), on by default, and which options decide a
checkpoint version."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefmill.flows.train import StartModel, version_config
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.methods import kto
from prefmill.trainers.methods.kto import BALANCE_BAND, class_weights, data_args


def _in_band(desirable: int, undesirable: int, weights: dict[str, float]) -> bool:
    d, u = weights.get("desirable_weight", 1.0), weights.get("undesirable_weight", 1.0)
    ratio = d * desirable / (u * undesirable)
    # TRL's own check rounds its bounds to 2 decimals (kto_trainer.py): stay inside those too
    return BALANCE_BAND[0] <= ratio <= BALANCE_BAND[1] - 0.01


@pytest.mark.parametrize("desirable,undesirable", [(77, 435), (1, 99), (435, 77), (99, 1), (10, 3)])
def test_the_rarer_class_is_weighted_into_trls_band(desirable: int, undesirable: int) -> None:
    weights = class_weights(desirable, undesirable)
    assert len(weights) == 1 and _in_band(desirable, undesirable, weights)
    rarer = "desirable_weight" if desirable < undesirable else "undesirable_weight"
    assert rarer in weights and weights[rarer] > 1


@pytest.mark.parametrize("desirable,undesirable", [(100, 100), (120, 100), (133, 100), (0, 50), (50, 0)])
def test_balanced_or_one_sided_rows_keep_trls_defaults(desirable: int, undesirable: int) -> None:
    assert class_weights(desirable, undesirable) == {}


def test_balance_is_on_by_default_and_reads_the_labels() -> None:
    rows = [{"label": True}] * 77 + [{"label": False}] * 435
    on = TrainConfig.model_validate({"method": "kto"})
    assert on.class_balance is True
    assert data_args(on, rows) == {"desirable_weight": round(1.15 * 435 / 77, 2)}
    off = TrainConfig.model_validate({"method": "kto", "class_balance": False})
    assert data_args(off, rows) == {}
    assert kto.METHOD.data_args is data_args


def test_a_method_version_holds_its_own_options_only() -> None:
    base = StartModel(Path("."), "smollm2")
    dpo = version_config(TrainConfig.model_validate({"method": "dpo"}), base, "1.16.0")
    assert "class_balance" not in dpo and "num_generations" not in dpo
    assert dpo == version_config(
        TrainConfig.model_validate({"method": "dpo", "class_balance": False}), base, "1.16.0"
    )
    ko = version_config(TrainConfig.model_validate({"method": "kto"}), base, "1.16.0")
    assert ko["class_balance"] is True and "num_generations" not in ko
    assert ko != version_config(
        TrainConfig.model_validate({"method": "kto", "class_balance": False}), base, "1.16.0"
    )


def test_weights_from_the_rows_reach_trls_config_and_trl_args_win() -> None:
    from dataclasses import make_dataclass

    from prefmill.trainers.runner import _trl_args

    passed = [
        "output_dir",
        "learning_rate",
        "num_train_epochs",
        "max_steps",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "seed",
        "data_seed",
        "logging_steps",
        "save_strategy",
        "report_to",
        "disable_tqdm",
        "bf16",
        "gradient_checkpointing",
        "dataloader_num_workers",
        "max_length",
    ]
    fake_kto_config = make_dataclass(
        "FakeKTOConfig",
        [(n, object, None) for n in passed]
        + [("desirable_weight", float, 1.0), ("undesirable_weight", float, 1.0)],
    )
    config = TrainConfig.model_validate({"method": "kto"})
    args = _trl_args(config, "kto", Path("work"), fake_kto_config, {"desirable_weight": 6.5})
    assert args.desirable_weight == 6.5 and args.undesirable_weight == 1.0
    pinned = TrainConfig.model_validate({"method": "kto", "trl_args": {"desirable_weight": 2.0}})
    assert (
        _trl_args(pinned, "kto", Path("work"), fake_kto_config, {"desirable_weight": 6.5}).desirable_weight
        == 2.0
    )
