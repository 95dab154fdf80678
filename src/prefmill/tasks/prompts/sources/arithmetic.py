"""Prompt-source kind `arithmetic`: seeded arithmetic word problems with exact answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.prompts.sources.base import SourceKind, SourceSection

if TYPE_CHECKING:
    import pyarrow as pa


class ArithmeticSource(SourceSection):
    """Seeded arithmetic word problems with exact answers in `reference`."""

    kind: Literal["arithmetic"] = Field(description="`arithmetic`.")
    n: int = Field(ge=1, le=1_000_000, description="How many problems.")
    seed: int = Field(default=0, description="Seed of the generator: same seed, same problems.")
    max_operand: int = Field(default=50, ge=2, le=1_000_000, description="Largest operand.")


def load(config: ArithmeticSource, _resolve: Callable[[str], Path]) -> tuple[pa.Table, pa.Table]:
    import pyarrow as pa

    from prefmill.tasks.prompts.arithmetic import arithmetic_problems

    return arithmetic_problems(config.n, config.seed, max_operand=config.max_operand), pa.table({})


KIND = SourceKind(config=ArithmeticSource, load=load, order=20)  # type: ignore[arg-type]
