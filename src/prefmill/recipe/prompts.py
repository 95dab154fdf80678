"""The `prompts` section: where prompts come from.

The source configs are declared by the prompt-source kinds (``prefmill.tasks.prompts.sources``, one
module per kind); ``PromptSource`` is built from them by its registry.
"""

from __future__ import annotations

from pydantic import Field

from prefmill.recipe.base import _Section
from prefmill.tasks.prompts.sources.arithmetic import ArithmeticSource
from prefmill.tasks.prompts.sources.file import FileSource
from prefmill.tasks.prompts.sources.registry import PromptSource

__all__ = ["ArithmeticSource", "FileSource", "PromptSource", "PromptsConfig"]


class PromptsConfig(_Section):
    """Stage 0: where prompts come from."""

    sources: list[PromptSource] = Field(min_length=1, description="Prompt sources, read in order.")
