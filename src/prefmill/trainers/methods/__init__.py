"""The training methods: one module each (its ``METHOD``), listed here once.

``METHODS`` (name -> ``TrainMethod``) is the registry the recipe's ``train.method`` choices, its docs,
the CLI's ``--method`` help and the runner are built from. Adding a method: its module, one entry in
``_MODULES`` (the order of the docs and the help), a test.
"""

from __future__ import annotations

from prefmill.trainers.method import TrainMethod, TrainSection
from prefmill.trainers.methods import cpo, dpo, grpo, kto, orpo, prm, reward, simpo

_MODULES = (dpo, kto, reward, grpo, cpo, simpo, orpo, prm)

METHODS: dict[str, TrainMethod] = {module.METHOD.name: module.METHOD for module in _MODULES}
#: the methods' own recipe options, mixed into ``TrainConfig``
OPTIONS: tuple[type[TrainSection], ...] = tuple(m.options for m in METHODS.values() if m.options)


def method(name: str) -> TrainMethod:
    """The method called ``name`` (the recipe has checked it is one)."""
    return METHODS[name]
