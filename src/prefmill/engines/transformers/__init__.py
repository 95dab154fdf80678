"""Engine kind ``transformers``: a Hugging Face causal LM in process (the embedded default, CPU).

``transformers:smollm2`` (the embedded SmolLM2-135M-Instruct) or ``transformers:/path/to/model``.
The engine itself (``engine.TransformersEngine``) imports torch; this module does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine
from prefmill.engines.model_cache import is_embedded_name, resolve_model
from prefmill.engines.spec import EngineKind, EngineSpec

if TYPE_CHECKING:
    from prefmill.engines.transformers.engine import TransformersEngine

__all__ = ["KIND", "TransformersEngine"]


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    if not is_embedded_name(spec.model):
        resolve_model(spec.model)  # a missing folder fails here, before torch is imported
    from prefmill.engines.transformers.engine import TransformersEngine

    return TransformersEngine(spec.model, **options)


KIND = EngineKind(
    name="transformers",
    engine="prefmill.engines.transformers.engine:TransformersEngine",
    options=frozenset({"batch_size", "device", "dtype", "share_prefix"}),
    factory=_build,
    examples=("transformers:smollm2", "transformers:/path/to/model"),
    summary="a Hugging Face causal-LM folder in process (the embedded SmolLM2-135M-Instruct by default)",
    batch_invariant=False,
)


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        return KIND.engine_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
