"""The prompts stage's plan: what decides the `prompts` version and what each source shard reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefmill.errors import InputError
from prefmill.recipe import PromptSource, Recipe, file_digest
from prefmill.tasks.prompts.sources.registry import source_kind


@dataclass(frozen=True)
class PromptsPlan:
    """The prompts stage, resolved once per build: ``config`` decides the version; ``sources`` are
    the recipe's sources with file paths made absolute (what each shard reads); ``row_group_rows``:
    the prompts file's Parquet row groups, a multiple of the build's shard size (``row_groups``), so
    a synthesis shard decodes one row group, not the whole file (the file's layout, not its rows:
    it stays out of the version)."""

    dataset: str
    config: dict[str, Any]
    sources: tuple[PromptSource, ...]
    row_group_rows: int | None = None


def plan_prompts(recipe: Recipe) -> PromptsPlan:
    """What decides the prompts version: each source's options and, for files, their content hash."""
    entries, sources = [], []
    for i, source in enumerate(recipe.prompts.sources):
        entry = source.model_dump()
        if (field := source_kind(source).input_file) is not None:
            path = recipe.resolve_path(getattr(source, field))
            if path.is_dir():
                raise InputError(
                    f"prompt file is a folder: {path} (recipe field prompts.sources[{i}].{field}); "
                    "point it at a file in it"
                )
            if not path.is_file():
                raise InputError(
                    f"prompt file not found: {path} (recipe field prompts.sources[{i}].{field}); fix the path"
                )
            entry[field] = path.name
            entry["sha256"] = file_digest(path)
            source = source.model_copy(update={field: str(path)})
        entries.append(entry)
        sources.append(source)
    return PromptsPlan(recipe.dataset, {"sources": entries}, tuple(sources), row_groups(recipe.shard_size))


#: The fewest rows of a row group of the prompts file (tiny row groups bloat the file's footer and
#: slow every scan of it).
MIN_ROW_GROUP = 8192


def row_groups(shard_size: int) -> int:
    """Rows per row group of the prompts file: the smallest multiple of ``shard_size`` that is at
    least ``MIN_ROW_GROUP``, so every shard's prompts lie in one row group."""
    return shard_size * -(-MIN_ROW_GROUP // shard_size)


def prompts_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the prompts version (``plan_prompts(recipe).config``)."""
    return plan_prompts(recipe).config
