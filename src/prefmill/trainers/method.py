"""What a training method is. Each method is one module of ``prefmill.trainers.methods`` that declares
a ``TrainMethod``: its traits (the TRL classes, the tables it reads, the dataset contract of its rows),
its options (a pydantic model mixed into the recipe's ``train:`` section) and its work (its own TRL
arguments, its reward functions).

Light on purpose: no torch, TRL or pyarrow at import time, so the recipe (``prefmill.trainers.config``)
can build ``train.method``'s choices and docs from these declarations without the ``train`` extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pyarrow as pa

    from prefmill.trainers.data import TrainRows

#: TRL's dataset types: preference (prompt, chosen, rejected), unpaired preference (prompt,
#: completion, label), prompt-only (prompt, plus the ``reference`` GRPO's reward reads).
#: stepwise supervision (prompt, completions, labels) for a process reward model.
Contract = Literal["preference", "unpaired", "prompt-only", "stepwise"]


class TrainSection(BaseModel):
    """Base of the ``train:`` / ``iterate:`` recipe models and of the methods' option models."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainLengths(Protocol):
    """What a method's ``trl_args`` may read of the ``train:`` section's common fields. A method that
    reads its own options types its argument as its options model (``TrainConfig`` mixes every
    method's options in), so no method module names ``TrainConfig``, which is built from them."""

    @property
    def max_length(self) -> int: ...


def _max_length(config: TrainLengths) -> dict[str, Any]:
    return {"max_length": config.max_length}


@dataclass(frozen=True)
class TrainMethod:
    """One TRL training method, as prefmill runs it."""

    name: str
    #: modules tried in order for the TRL classes (experimental trainers moved in recent TRL)
    trl_modules: tuple[str, ...]
    trl_config: str
    trl_trainer: str
    #: the table read by default, and every table accepted
    table: str
    accepts: tuple[str, ...]
    contract: Contract
    #: what the recipe docs say of the method after its name ("" for nothing)
    doc: str = ""
    #: peft task type: ``CAUSAL_LM`` trains a policy (it generates, so it is evaluated and can sample
    #: the next round); ``SEQ_CLS`` a one-label sequence classifier (a reward model); ``TOKEN_CLS`` a
    #: two-label token classifier at the step separators (a process reward model)
    task_type: Literal["CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS"] = "CAUSAL_LM"
    #: the pairs' margin goes into the rows (as ``margin``)
    with_margin: bool = False
    #: ``loss_type`` is passed to TRL as a list (losses combined), else as one name
    loss_list: bool = False
    #: the method's own TRL arguments, from the ``train:`` section (the whole ``TrainConfig`` is
    #: passed; a method reads its own options and the ``TrainLengths`` fields)
    trl_args: Callable[[Any], dict[str, Any]] = _max_length
    #: TRL arguments that depend on the training rows (KTO's class weights), from the ``train:``
    #: section and the rows; the section's ``trl_args`` still win
    data_args: Callable[[Any, list[dict[str, Any]]], dict[str, Any]] | None = None
    #: reward functions passed to the trainer when the caller gives none (GRPO)
    rewards: tuple[Callable[..., list[float]], ...] = ()
    #: recipe options of this method only: a ``TrainSection`` whose fields join ``train:``
    options: type[TrainSection] | None = None

    @property
    def generates(self) -> bool:
        """The checkpoint is a policy that generates text (not a reward model)."""
        return self.task_type == "CAUSAL_LM"

    def rows(self, table: pa.Table, prompts: pa.Table | None, where: str) -> TrainRows:
        """``table`` (named ``where`` in errors) -> the TRL rows of this method's contract."""
        from prefmill.errors import InputError
        from prefmill.trainers.data import pairs_to_preference, points_to_unpaired, prompts_to_grpo, stepwise

        if self.contract == "stepwise":
            return stepwise(table, where)
        if self.contract == "unpaired":
            return points_to_unpaired(table, prompts)
        if self.contract == "prompt-only":
            if prompts is None:
                raise InputError(f"train: {self.name} needs the prompts {where} was made from; none found")
            return prompts_to_grpo(table, prompts)
        return pairs_to_preference(table, prompts, with_margin=self.with_margin)
