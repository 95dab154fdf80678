"""The base of every recipe section: frozen pydantic models that forbid unknown fields.

It imports nothing of prefmill's, so that the configs can live next to the code that reads them (the
judge and prompt-source kinds, ``tasks/steps/config.py``, ``tasks/instantiation/config.py``,
``tasks/synthesis/config.py``) while the recipe, which composes them, sits above that code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
