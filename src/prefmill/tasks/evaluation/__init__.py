"""Evaluation stage: verifiers, heuristics and judge models that turn candidates into judgments.

Every function here is a pure function over Arrow tables. The judge kinds live in ``judges/`` (one
module each); the names below are imported on first use, so that the recipe can import the judge
kinds' configs without the work behind them.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "EVALUATION_CODE_VERSION": "judge",
    "KNOWN_JUDGES": "judge",
    "judge_shard": "judge",
    "arithmetic_verifier": "verifiers",
    "extract_final_number": "extract",
    "normalize_number": "extract",
    "numbers_equal": "extract",
    "heuristic_judge": "heuristic",
    "heuristic_scores": "heuristic",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
