"""Prompt-source kind `file`: prompts read from a JSONL, CSV or Parquet file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.prompts.sources.base import SourceKind, SourceSection

if TYPE_CHECKING:
    import pyarrow as pa


class FileSource(SourceSection):
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


def load(config: FileSource, resolve: Callable[[str], Path]) -> tuple[pa.Table, pa.Table]:
    from prefmill.tasks.prompts.loaders import load_file

    return load_file(
        resolve(config.path),
        fmt=config.format,
        field=config.field,
        messages_field=config.messages_field,
        reference_field=config.reference_field,
        rubric_field=config.rubric_field,
    )


KIND = SourceKind(config=FileSource, load=load, input_file="path", order=10)  # type: ignore[arg-type]
