"""The base of every recipe section: frozen pydantic models that forbid unknown fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from prefmill.storage.tables import OUTPUTS

STAGES = ("prompts", "synthesis", "evaluation", "instantiation")

#: The recipe's choice of instantiation outputs, built from the table registry.
Output: Any = Literal[OUTPUTS]  # type: ignore[valid-type]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
