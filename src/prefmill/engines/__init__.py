"""Generation backends behind one batch protocol (DESIGN §4).

``get_engine("transformers:smollm2")`` builds an engine once per process. Importing this package does
not import torch or vllm; ``TransformersEngine``, ``VLLMEngine`` and ``OpenAIEngine`` load on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine, Generation, GenerationRequest, Messages, SamplingParams
from prefmill.engines.model_cache import embedded_model_dir, resolve_model
from prefmill.engines.registry import EngineSpec, clear_engines, get_engine, loaded_engines, parse_spec

if TYPE_CHECKING:
    from prefmill.engines.openai_engine import OpenAIEngine
    from prefmill.engines.transformers_engine import TransformersEngine
    from prefmill.engines.vllm_engine import VLLMEngine

__all__ = [
    "Engine",
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
    "get_engine",
    "loaded_engines",
    "parse_spec",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name == "TransformersEngine":
        from prefmill.engines.transformers_engine import TransformersEngine

        return TransformersEngine
    if name == "OpenAIEngine":
        from prefmill.engines.openai_engine import OpenAIEngine

        return OpenAIEngine
    if name == "VLLMEngine":
        from prefmill.engines.vllm_engine import VLLMEngine

        return VLLMEngine
    raise AttributeError(f"module 'prefmill.engines' has no attribute {name!r}")
