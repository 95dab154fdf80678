"""Evaluation stage: verifiers, heuristics and judge models that turn candidates into judgments.

Every function here is a pure function over Arrow tables. The judge kinds live in ``judges/`` (one
module each); the names below are imported on first use, so that the recipe can import the judge
kinds' configs without the work behind them.
"""

from __future__ import annotations

from prefmill.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
