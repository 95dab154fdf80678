"""Engine kind ``openai``: any OpenAI-compatible chat endpoint, ``openai:MODEL@http://host:port/v1``.

The package by job: ``transport`` (the official ``openai.AsyncOpenAI`` client, with prefmill's
retries and backoff around each attempt), ``limiter`` (the adaptive bound on requests in flight),
``pricing`` (USD per million tokens) and ``engine`` (``OpenAIEngine``: n-grouping, request
parameters, typed completions to rows, ``generate`` and ``score``). This module imports none of them
(nor the ``openai`` package) until an engine is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine
from prefmill.engines.spec import EngineKind, EngineSpec
from prefmill.redaction import reveal

if TYPE_CHECKING:
    from prefmill.engines.openai.engine import OpenAIEngine

__all__ = ["KIND", "OpenAIEngine"]


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    from prefmill.engines.openai.engine import OpenAIEngine

    assert spec.url is not None
    return OpenAIEngine(spec.model, reveal(spec.url), **options)  # the recipe carries it hidden


KIND = EngineKind(
    name="openai",
    engine="prefmill.engines.openai.engine:OpenAIEngine",
    options=frozenset(
        {
            "max_concurrency",
            "min_concurrency",
            "timeout",
            "connect_timeout",
            "max_retries",
            "backoff",
            "max_backoff",
            "api_key_env",
            "max_n",
            "logprobs",
            "input_per_mtok",
            "output_per_mtok",
            "batch_size",
            "structured_output",
        }
    ),
    factory=_build,
    examples=("openai:MODEL@URL",),
    summary="an OpenAI-compatible endpoint: vLLM's server, SGLang, TGI, OpenAI",
    url=True,
    priced=True,
    concurrency=("max_concurrency", 16),
)


def __getattr__(name: str) -> Any:
    if name == "OpenAIEngine":
        return KIND.engine_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
