"""The base of every recipe section: frozen pydantic models that forbid unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

STAGES = ("prompts", "synthesis", "evaluation", "instantiation")
OUTPUTS = ("pairs", "points", "lists")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
