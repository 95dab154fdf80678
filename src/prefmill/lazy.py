"""Package attributes imported on first use (PEP 562), for packages whose ``__init__`` must stay light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, module_of: Mapping[str, str], *, also: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name -> the module that defines it (a submodule
    relative to ``package``, or a full name starting ``prefmill.``), imported when the name is first
    asked for and then kept in the package; ``also`` names what the package defines itself (listed by
    ``dir``)."""
    names = sorted([*module_of, *also])

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("prefmill.") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
