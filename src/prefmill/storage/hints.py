"""The command lines prefmill suggests (build summary, Prefect artifacts, error messages).

``command`` builds every one of them, so a hint a user copies reads the data it talks about: it
names ``--root`` whenever the root is not the one a plain command would open ($PREFMILL_HOME, else
./prefmill-data from the current folder), and ``--dataset`` when the caller knows it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from prefmill.storage.fs import default_root


def _where(root: str) -> str:
    """A root as a comparable string: URIs as written (no trailing slash), folders absolute."""
    if "://" in root:
        return root.rstrip("/")
    return str(Path(root).expanduser().resolve())


def is_default_root(root: str | os.PathLike[str] | None) -> bool:
    """Whether a command without ``--root`` opens ``root``."""
    return root is None or _where(os.fspath(root)) == _where(default_root())


def command(*words: str, root: str | os.PathLike[str] | None = None, dataset: str | None = None) -> str:
    """``prefmill WORDS [--dataset D] [--root R]`` as typed in a shell (words quoted when needed).

    ``root``: the store the hint is about; ``--root`` is added unless it is the default root.
    A word that is a placeholder (``RECIPE``) is kept as it is."""
    parts = ["prefmill", *words]
    if dataset:
        parts += ["--dataset", dataset]
    if not is_default_root(root):
        parts += ["--root", os.fspath(root)]  # type: ignore[arg-type]
    return " ".join(shlex.quote(p) for p in parts)
