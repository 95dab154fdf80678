"""Engine kind ``scripted``: answers at once with deterministic text (no model), ``scripted:NAME``.

For measuring the factory's own cost per row (``benchmarks/factory.py``) and for tests and dry runs
of a recipe's plumbing: the reply to a request depends only on its seed and its last message, so a
build with it is as reproducible as one with a model. Options: ``words`` (the longest reply in
words, default 12; replies have ``words // 2`` to ``words``, cut at the request's ``max_new_tokens``)
and ``batch_size`` (accepted, unused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine
from prefmill.engines.spec import EngineKind, EngineSpec

if TYPE_CHECKING:
    from prefmill.engines.scripted.engine import ScriptedEngine

__all__ = ["KIND", "ScriptedEngine"]


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    from prefmill.engines.scripted.engine import ScriptedEngine

    return ScriptedEngine(spec.model, **options)


KIND = EngineKind(
    name="scripted",
    engine="prefmill.engines.scripted.engine:ScriptedEngine",
    options=frozenset({"words", "batch_size"}),
    factory=_build,
    examples=("scripted:echo",),
    summary="deterministic text at once, no model: the factory's own cost, tests, dry runs",
)


def __getattr__(name: str) -> Any:
    if name == "ScriptedEngine":
        return KIND.engine_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
