"""Trainer recipe sections: ``train:`` (one TRL training run) and ``iterate:`` (the closed loop).

Pure pydantic, no torch or TRL import: the recipe loads these without the ``train`` extra. This module
(with the light method declarations of ``prefmill.trainers.methods`` it builds on) is all the recipe
imports of prefmill.trainers. ``train.method``'s choices, its docs and the methods' own options come
from the method modules. Each field is documented where it is declared; ``docs/recipe.md`` is
generated from these docs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from prefmill.trainers.method import TrainSection
from prefmill.trainers.methods import METHODS, OPTIONS

#: The methods, from their modules (``prefmill.trainers.methods``).
Method = Literal[tuple(METHODS)]  # type: ignore[valid-type]


def _method_doc() -> str:
    names = (f"`{m.name}`" + (f" ({m.doc})" if m.doc else "") for m in METHODS.values())
    return "TRL trainer: " + ", ".join(names) + "."


def _table_doc() -> str:
    by_table: dict[str, list[str]] = {}
    for m in METHODS.values():
        by_table.setdefault(m.table, []).append(m.name)
    defaults = ", ".join(f"{table} ({', '.join(names)})" for table, names in by_table.items())
    return f"Input as TABLE or TABLE@VERSION. Default: {defaults}."


class TrainLoraConfig(TrainSection):
    """LoRA adapters (peft). The saved checkpoint is always a plain model folder: adapters are merged."""

    enabled: bool = Field(default=True, description="Train LoRA adapters instead of every weight.")
    r: int = Field(default=16, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(default=32, ge=1, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(default=0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: str | list[str] = Field(
        default="all-linear", description="Modules that get adapters: `all-linear` or a list of names."
    )


class TrainEvalConfig(TrainSection):
    """Held-out evaluation before and after training: greedy answers, arithmetic verifier accuracy."""

    n: int = Field(default=16, ge=0, le=100_000, description="Held-out problems; 0 turns evaluation off.")
    seed: int = Field(default=1000, description="Seed of the held-out arithmetic generator.")
    max_operand: int = Field(default=30, ge=2, le=1_000_000, description="Largest operand of the problems.")
    max_new_tokens: int = Field(default=64, ge=1, le=32768, description="Longest answer in tokens.")


class _TrainHead(TrainSection):
    """The fields of ``train:`` before the methods' own options."""

    method: Method = Field(default="dpo", description=_method_doc())
    table: str | None = Field(default=None, description=_table_doc())
    ref: str = Field(default="latest", description="Ref that names the input version when none is given.")
    base_model: str = Field(
        default="smollm2",
        description="Model to train: `smollm2` (the embedded SmolLM2-135M-Instruct), a model folder, or "
        "`checkpoints@VERSION` (a checkpoint prefmill trained; lineage links the two).",
    )
    loss_type: str | list[str] | None = Field(
        default=None,
        description="TRL's loss_type (dpo: sigmoid, ipo, hinge, robust, ...; cpo: sigmoid, hinge, ipo, "
        "simpo). Default: the trainer's.",
    )
    beta: float | None = Field(default=None, gt=0, description="TRL's beta. Default: the trainer's.")
    learning_rate: float = Field(default=5e-5, gt=0, description="Peak learning rate.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the data (when max_steps is unset).")
    max_steps: int | None = Field(default=None, ge=1, description="Optimizer steps; overrides epochs.")
    batch_size: int = Field(default=4, ge=1, le=65536, description="Examples per device and step.")
    grad_accum: int = Field(default=1, ge=1, le=65536, description="Gradient accumulation steps.")
    max_length: int = Field(default=512, ge=8, description="Longest prompt + completion in tokens.")

    @field_validator("loss_type")
    @classmethod
    def _loss_type(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and not v:
            raise ValueError("loss_type must name at least one loss")
        return v


class _TrainTail(TrainSection):
    """The fields of ``train:`` after the methods' own options."""

    seed: int = Field(default=0, description="Training seed (data order, initialisation of adapters).")
    lora: TrainLoraConfig = Field(default_factory=TrainLoraConfig, description="LoRA adapters.")
    eval: TrainEvalConfig = Field(default_factory=TrainEvalConfig, description="Evaluation before and after.")
    output_dir: str | None = Field(
        default=None,
        description="Where the checkpoint goes. Default: inside its `checkpoints` version folder of the "
        "store (local roots), else ./prefmill-checkpoints/DATASET/VERSION.",
    )
    trl_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Further arguments of the TRL config, passed as they are (e.g. bf16, "
        "gradient_checkpointing, warmup_ratio on a GPU machine).",
    )


# Field order is the reverse of the bases: _TrainHead, then each method's options, then _TrainTail.
class TrainConfig(_TrainTail, *OPTIONS, _TrainHead):  # type: ignore[misc]
    """`prefmill train`: one TRL training run on a table version of the recipe's dataset."""

    def input_table(self) -> tuple[str, str | None]:
        """(table, version or None) of the input."""
        spec = self.table or METHODS[self.method].table
        table, _, version = spec.partition("@")
        return table, version or None


class IterateConfig(TrainSection):
    """`prefmill iterate`: build -> train rounds; round r samples from round r-1's checkpoint."""

    rounds: int = Field(default=2, ge=1, le=100, description="Build + train rounds.")
    mode: Literal["dpo", "spin"] = Field(
        default="dpo",
        description="`dpo`: iterative DPO on the pairs each round builds (the `train` section's method). "
        "`spin`: self-play, chosen = the prompt's reference answer, rejected = each of the current "
        "policy's samples (pairs from prefmill/sql/spin.sql), trained with DPO.",
    )
    fresh_prompts: bool = Field(
        default=True,
        description="Shift the seed of arithmetic prompt sources by the round number, so each round "
        "samples new problems (file sources stay the same).",
    )
