"""The `prompts` section: where prompts come from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from prefmill.recipe.base import _Section


class FileSource(_Section):
    """Prompts read from a JSONL, CSV or Parquet file."""

    kind: Literal["file"] = Field(description="`file`.")
    path: str = Field(description="Path of the file; relative paths are relative to the recipe's folder.")
    format: Literal["jsonl", "csv", "parquet"] | None = Field(
        default=None, description="File format; by default taken from the suffix."
    )
    field: str = Field(default="prompt", description="Column holding the prompt text.")
    messages_field: str = Field(
        default="messages", description="Column holding a chat (list of {role, content}) instead of text."
    )
    reference_field: str = Field(default="reference", description="Column with a gold answer, if any.")
    rubric_field: str = Field(default="rubric", description="Column with a per-prompt rubric, if any.")


class ArithmeticSource(_Section):
    """Seeded arithmetic word problems with exact answers in `reference`."""

    kind: Literal["arithmetic"] = Field(description="`arithmetic`.")
    n: int = Field(ge=1, le=1_000_000, description="How many problems.")
    seed: int = Field(default=0, description="Seed of the generator: same seed, same problems.")
    max_operand: int = Field(default=50, ge=2, le=1_000_000, description="Largest operand.")


PromptSource = Annotated[FileSource | ArithmeticSource, Field(discriminator="kind")]


class PromptsConfig(_Section):
    """Stage 0: where prompts come from."""

    sources: list[PromptSource] = Field(min_length=1, description="Prompt sources, read in order.")
