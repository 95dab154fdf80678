"""What every recipe section shares: the stage names, the outputs, and ``_Section`` (the frozen,
extra-forbidding base, defined in ``prefmill.section`` so that the task code can build its configs on
it without importing the recipe)."""

from __future__ import annotations

from prefmill.section import _Section as _Section
from prefmill.storage.tables import OUTPUTS as OUTPUTS

STAGES = ("prompts", "synthesis", "evaluation", "instantiation")
