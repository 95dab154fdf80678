"""What every recipe section shares: the stage names, the choice of outputs, and ``_Section`` (the
frozen, extra-forbidding base, defined in ``prefmill.section`` so that the task code can build its
configs on it without importing the recipe)."""

from __future__ import annotations

from typing import Any, Literal

from prefmill.section import _Section as _Section
from prefmill.storage.tables import OUTPUTS

STAGES = ("prompts", "synthesis", "evaluation", "instantiation")

#: The recipe's choice of instantiation outputs, built from the table registry.
Output: Any = Literal[OUTPUTS]  # type: ignore[valid-type]
