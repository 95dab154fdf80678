"""Prompts stage: load prompt sources, generate arithmetic problems, combine and de-duplicate.

Every function here is a pure function returning Arrow tables (``prompts`` and ``prompts_rejected``).
The prompt-source kinds live in ``sources/`` (one module each); the names below are imported on
first use, so that the recipe can import the source kinds' configs without the work behind them.
"""

from __future__ import annotations

from prefmill.lazy import lazy_exports

_MODULE_OF = {
    "FORMATS": "loaders",
    "PROMPTS_CODE_VERSION": "build",
    "arithmetic_problems": "arithmetic",
    "combine": "build",
    "load_file": "loaders",
}

__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
