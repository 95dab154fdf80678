"""What a prompt-source kind declares: its config, its work, and the file whose content it reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from prefmill.section import _Section

if TYPE_CHECKING:
    import pyarrow as pa


class SourceSection(_Section):
    """Base of every prompt-source config: a recipe section with a ``kind`` tag."""

    kind: str


#: (config, resolve: recipe-relative path -> Path) -> (prompts, prompts_rejected); a source that
#: rejects nothing returns a column-less rejected table.
Loader = Callable[[SourceSection, Callable[[str], Path]], "tuple[pa.Table, pa.Table]"]


@dataclass(frozen=True)
class SourceKind:
    """One prompt-source kind: its recipe config model and the work that reads it."""

    config: type[SourceSection]
    load: Loader
    #: The config field naming an input file (recipe-relative): the file's content, not its name,
    #: enters the prompts version. None: the config alone decides the prompts.
    input_file: str | None = None
    order: int = 1000  # position in the docs (then by kind)

    @property
    def name(self) -> str:
        (tag,) = get_args(self.config.model_fields["kind"].annotation)
        return str(tag)
