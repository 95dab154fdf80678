"""Run one TRL trainer on TRL-ready rows and save a plain model folder (extra ``train``: trl, peft).

Every loss is TRL's own: this module only picks the trainer and its config (from the method's
declaration in ``prefmill.trainers.methods``), builds the LoRA config, and saves the result. A
trainer that the installed TRL does not have is a ``TrainerError`` naming the TRL version.
LoRA adapters are merged before saving, so a checkpoint is always a folder that ``transformers:/path``
(synthesis) and ``AutoModel*.from_pretrained`` load as they are.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefmill.engines.model_cache import hf_quiet
from prefmill.errors import PrefmillError
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.methods import METHODS

INSTALL = "pip install 'prefmill[train]'  (trl and peft)"


class TrainerError(PrefmillError):
    """A trainer cannot be built or run (missing extra, trainer absent from the installed TRL, ...)."""


def trl_version() -> str:
    """The installed TRL version; ``TrainerError`` with the install line when TRL is missing."""
    try:
        from importlib.metadata import version

        import trl  # noqa: F401

        return version("trl")
    except ImportError:
        raise TrainerError(f"training needs TRL and peft, which are not installed: {INSTALL}") from None


def trainer_classes(method: str) -> tuple[type, type]:
    """(config class, trainer class) of ``method`` from the installed TRL."""
    spec = METHODS[method]
    modules, config_name, trainer_name = spec.trl_modules, spec.trl_config, spec.trl_trainer
    version = trl_version()
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
            return getattr(module, config_name), getattr(module, trainer_name)
        except (ImportError, AttributeError):
            continue
    raise TrainerError(
        f"method '{method}' needs {trainer_name}, which the installed TRL {version} does not provide "
        f"(looked in {', '.join(modules)}); install a TRL version that has it or pick another method"
    )


@dataclass
class TrainResult:
    """What a training run produced."""

    path: str
    model_class: str
    steps: int
    train_loss: float
    losses: list[float]
    seconds: float
    trl_version: str
    metrics: dict[str, Any] = field(default_factory=dict)
    #: TRL arguments the method read off the rows (KTO's class weights), as trained
    from_rows: dict[str, Any] = field(default_factory=dict)


def _lora(config: TrainConfig, task_type: str) -> Any:
    if not config.lora.enabled:
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise TrainerError(f"LoRA needs peft, which is not installed: {INSTALL}") from None
    lora = config.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=task_type,
    )


def _trl_args(
    config: TrainConfig,
    method: str,
    work_dir: Path,
    config_cls: type,
    from_rows: dict[str, Any] | None = None,
) -> Any:
    import torch

    gpu = torch.cuda.is_available()
    args: dict[str, Any] = {
        "output_dir": str(work_dir),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "bf16": gpu and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "dataloader_num_workers": 0,
    }
    spec = METHODS[method]
    args.update(spec.trl_args(config))
    args.update(from_rows or {})  # the method's arguments read off the rows (KTO's class weights)
    if config.beta is not None:
        args["beta"] = config.beta
    if config.loss_type is not None:
        if spec.loss_list:
            args["loss_type"] = [config.loss_type] if isinstance(config.loss_type, str) else config.loss_type
        elif isinstance(config.loss_type, list):
            if len(config.loss_type) != 1:
                raise TrainerError(f"method '{method}' takes one loss_type, got {config.loss_type}")
            args["loss_type"] = config.loss_type[0]
        else:
            args["loss_type"] = config.loss_type
    args.update(config.trl_args)
    known = set(getattr(config_cls, "__dataclass_fields__", {}))
    unknown = sorted(k for k in args if known and k not in known)
    if unknown:
        raise TrainerError(
            f"train: {config_cls.__name__} of TRL {trl_version()} has no argument(s) {', '.join(unknown)}; "
            "fix train.trl_args"
        )
    try:
        return config_cls(**args)
    except (ValueError, TypeError) as exc:
        raise TrainerError(f"train: {config_cls.__name__} refused the arguments: {exc}") from exc


def _losses(history: list[dict[str, Any]]) -> list[float]:
    return [float(h["loss"]) for h in history if "loss" in h]


def _check_finite_weights(model: Any, method: str, config: TrainConfig) -> None:
    """Refuse to save a model whose weights went NaN/inf: a finite logged loss does not prove the
    last optimizer step was finite (e.g. SimPO's length-normalised log-prob of a completion that
    truncation left empty is 0/0)."""
    import torch

    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise TrainerError(
            f"train: {method} left {len(bad)} weight tensors non-finite (first: {bad[0]}); the checkpoint "
            f"is not saved. Raise max_length (now {config.max_length}) so completions are not cut to "
            "nothing, or lower the learning rate"
        )


def train(
    rows: list[dict[str, Any]],
    config: TrainConfig,
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    reward_funcs: list[Callable[..., list[float]]] | None = None,
) -> TrainResult:
    """Train ``config.method`` from the model folder ``model_dir`` on ``rows``; save into ``out_dir``."""
    method = config.method
    config_cls, trainer_cls = trainer_classes(method)
    version = trl_version()
    if not rows:
        raise TrainerError(f"train: no rows to train {method} on; build a non-empty table first")
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, set_seed
    from transformers.utils import logging as hf_logging

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.work"
    spec = METHODS[method]
    from_rows = spec.data_args(config, rows) if spec.data_args is not None else {}
    args = _trl_args(config, method, work, config_cls, from_rows)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = Dataset.from_list(rows)
    kwargs: dict[str, Any] = {"args": args, "train_dataset": dataset, "processing_class": tokenizer}
    set_seed(config.seed)  # the new heads below are initialised before the Trainer seeds anything
    if spec.task_type == "TOKEN_CLS":
        from prefmill.trainers.prm import prm_inputs

        kwargs.update(prm_inputs(rows, config, str(model_dir), tokenizer))  # LoRA applied there
    elif spec.task_type == "SEQ_CLS":
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=1, dtype=torch.float32
        )
        model.config.pad_token_id = tokenizer.pad_token_id
        kwargs["model"] = model
    else:
        kwargs["model"] = str(model_dir)
    if spec.rewards:
        kwargs["reward_funcs"] = reward_funcs or list(spec.rewards)
    if spec.task_type != "TOKEN_CLS" and (peft := _lora(config, spec.task_type)) is not None:
        kwargs["peft_config"] = peft
    started = time.perf_counter()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # TRL's dataset preparation bars would garble prefmill's own output
    quiet = hf_quiet()
    quiet.__enter__()  # no weight-loading bars
    try:
        trainer = trainer_cls(**kwargs)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # losses go to the summary and the checkpoint row
        output = trainer.train()
    except PrefmillError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"train: TRL {version} {trainer_cls.__name__} failed: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        quiet.__exit__(None, None, None)
    seconds = time.perf_counter() - started
    losses = _losses(trainer.state.log_history)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    _check_finite_weights(model, method, config)
    with hf_quiet():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    train_loss = float(output.training_loss)
    metrics = {k: v for k, v in (output.metrics or {}).items() if isinstance(v, int | float)}
    if not math.isfinite(train_loss):
        raise TrainerError(f"train: {method} loss is {train_loss} (not finite); lower the learning rate")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(
        path=str(out),
        model_class=type(model).__name__,
        steps=int(trainer.state.global_step),
        train_loss=train_loss,
        losses=losses,
        seconds=seconds,
        trl_version=version,
        metrics=metrics,
        from_rows={k: getattr(args, k) for k in from_rows},  # as trained: trl_args may override
    )
