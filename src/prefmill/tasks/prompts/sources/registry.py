"""Every prompt-source kind, found as the modules of this package; the recipe's union of them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from prefmill.tasks.prompts.sources import __path__ as _package_path
from prefmill.tasks.prompts.sources.base import SourceKind, SourceSection

if TYPE_CHECKING:
    import pyarrow as pa


def _discover() -> dict[str, SourceKind]:
    found: list[SourceKind] = []
    for info in pkgutil.iter_modules(_package_path):
        if info.name in ("base", "registry") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, SourceKind):
            raise TypeError(f"prompt-source module {module.__name__} defines no KIND = SourceKind(...)")
        found.append(kind)
    found.sort(key=lambda k: (k.order, k.name))
    return {k.name: k for k in found}


#: kind -> its declaration, in docs order.
SOURCES: dict[str, SourceKind] = _discover()
SOURCE_MODELS: dict[str, type[SourceSection]] = {name: k.config for name, k in SOURCES.items()}
PromptSource = Annotated[Union[tuple(SOURCE_MODELS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007


def source_kind(source: Any) -> SourceKind:
    return SOURCES[source.kind]


def load_source(source: Any, resolve: Callable[[str], Path]) -> tuple[pa.Table, pa.Table]:
    """One source's (prompts, prompts_rejected); ``resolve`` makes recipe-relative paths absolute."""
    return source_kind(source).load(source, resolve)
