"""Generation backends behind one batch protocol (DESIGN §4).

``get_engine("transformers:smollm2")`` builds an engine once per process. Each engine kind is one
subpackage (``transformers/``, ``vllm/``, ``openai/``) declaring ``KIND`` (``spec.EngineKind``);
``registry`` collects them. Importing this package does not import torch, vllm or httpx; an engine
class (``TransformersEngine``, ``VLLMEngine``, ``OpenAIEngine``) loads on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine, Generation, GenerationRequest, Messages, SamplingParams
from prefmill.engines.model_cache import embedded_model_dir, resolve_model
from prefmill.engines.registry import (
    EngineKind,
    EngineSpec,
    clear_engines,
    engine_kinds,
    get_engine,
    loaded_engines,
    parse_spec,
)

if TYPE_CHECKING:
    from prefmill.engines.openai.engine import OpenAIEngine
    from prefmill.engines.transformers.engine import TransformersEngine
    from prefmill.engines.vllm.engine import VLLMEngine

__all__ = [
    "Engine",
    "EngineKind",
    "EngineSpec",
    "Generation",
    "GenerationRequest",
    "Messages",
    "OpenAIEngine",
    "SamplingParams",
    "TransformersEngine",
    "VLLMEngine",
    "clear_engines",
    "embedded_model_dir",
    "engine_kinds",
    "get_engine",
    "loaded_engines",
    "parse_spec",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import system's probes: never collect the kinds for those
        raise AttributeError(name)
    for kind in engine_kinds().values():
        if kind.class_name == name:
            return kind.engine_class()
    raise AttributeError(f"module 'prefmill.engines' has no attribute {name!r}")
