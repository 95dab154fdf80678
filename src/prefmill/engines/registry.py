"""Engine specs (``kind:model``) and the per-process engine cache (the only global state, DESIGN §7).

A spec is ``transformers:smollm2``, ``transformers:/path/to/model``, ``vllm:smollm2``,
``vllm:/path/to/model`` or ``openai:MODEL@http://host:port/v1`` and may carry options after a ``?``:
``transformers:smollm2?batch_size=16&dtype=bfloat16``, ``openai:m@http://h:8000/v1?max_concurrency=32``.

The kinds are not listed here: each is a subpackage of ``prefmill.engines`` that declares
``KIND = EngineKind(...)`` (``engines/transformers/``, ``engines/vllm/``, ``engines/openai/``), and
``engine_kinds()`` collects them. Importing this module, or collecting the kinds, imports no torch,
vllm or httpx: each kind's factory imports its engine when one is built.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prefmill.engines.base import Engine
from prefmill.engines.spec import EngineKind, EngineSpec, split_model_url
from prefmill.errors import EngineError
from prefmill.redaction import inline_secret_option, redact

__all__ = [
    "EngineKind",
    "EngineSpec",
    "clear_engines",
    "engine_kind",
    "engine_kinds",
    "get_engine",
    "loaded_engines",
    "parse_spec",
    "price_options",
]


@functools.cache
def engine_kinds() -> dict[str, EngineKind]:
    """Every engine kind, by name: the ``KIND`` of each subpackage of ``prefmill.engines``."""
    import prefmill.engines as package

    kinds: dict[str, EngineKind] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        kind = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "KIND", None)
        if isinstance(kind, EngineKind):
            if kind.name in kinds:
                raise EngineError(f"engine kind '{kind.name}' is declared twice")
            kinds[kind.name] = kind
    return kinds


def engine_kind(name: str) -> EngineKind:
    """The kind called ``name`` (``EngineError`` listing the known kinds when there is none)."""
    kinds = engine_kinds()
    if name not in kinds:
        raise EngineError(
            f"unknown engine kind '{name}'; known kinds: {', '.join(kinds)} (e.g. {_examples()})"
        )
    return kinds[name]


def _examples() -> str:
    return ", ".join(example for kind in engine_kinds().values() for example in kind.examples)


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
    """Parse ``kind:model[?key=value&...]`` (``kind:model@url[?...]`` for kinds with an endpoint).

    Raises ``EngineError`` for unknown kinds (listing the known ones) and malformed specs.
    """
    kinds = engine_kinds()
    shown = redact(spec) if isinstance(spec, str) else spec  # errors never print a key
    if not isinstance(spec, str) or ":" not in spec:
        raise EngineError(
            f"engine spec {shown!r} has no kind; write kind:model, e.g. {_examples()} "
            f"(known kinds: {', '.join(kinds)})"
        )
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind not in kinds:
        raise EngineError(
            f"unknown engine kind '{kind}' in spec {shown!r}; known kinds: {', '.join(kinds)} "
            f"(e.g. {_examples()})"
        )
    secret = inline_secret_option(spec)
    if secret is not None:
        raise EngineError(
            f"engine spec {shown!r}: option {secret} holds a secret; keep it out of the recipe: export it "
            "in an environment variable and name that with api_key_env=VAR"
        )
    model, _, query = rest.strip().partition("?")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise EngineError(f"engine spec {shown!r}: option '{part}' is not key=value")
        options[key.strip()] = _option_value(value.strip())
    url = None
    if kinds[kind].url:
        model, sep, url = split_model_url(model)
        if not sep or not model or not url:
            raise EngineError(
                f"engine spec {shown!r}: an {kind} engine is {kind}:MODEL@URL, e.g. "
                f"{kind}:Qwen2.5-7B-Instruct@http://localhost:8000/v1"
            )
    if not model:
        raise EngineError(f"engine spec {shown!r} names no model; e.g. {kind}:smollm2")
    return EngineSpec(kind=kind, model=model, options=options, url=url)


def _build(spec: EngineSpec, options: dict[str, Any]) -> Engine:
    kind = engine_kind(spec.kind)
    kind.check_options(options)
    return kind.factory(spec, options)


def price_options(spec: str, prices: Mapping[str, Any] | None) -> dict[str, float]:
    """``input_per_mtok`` / ``output_per_mtok`` options for a priced spec from a recipe price table.

    ``prices`` maps a model name to an object or mapping with those two fields (USD per million
    tokens). Kinds that are not priced (the local engines) and unpriced models get no options.
    """
    if not prices:
        return {}
    parsed = parse_spec(spec)
    if not engine_kind(parsed.kind).priced or parsed.model not in prices:
        return {}
    entry = prices[parsed.model]
    get = entry.get if isinstance(entry, Mapping) else lambda k: getattr(entry, k, None)
    return {k: float(v) for k in ("input_per_mtok", "output_per_mtok") if (v := get(k)) is not None}


_ENGINES: dict[tuple[str, str, str | None, tuple[tuple[str, Any], ...]], Engine] = {}
_LOCK = threading.Lock()


#: The recipe's price table for engines built without an explicit one (judges, revision): set
#: around a shard's work by ``priced`` (a context variable: each shard thread has its own).
_PRICES: ContextVar[Mapping[str, Any] | None] = ContextVar("prefmill_prices", default=None)


@contextmanager
def priced(prices: Mapping[str, Any] | None) -> Iterator[None]:
    """Engines built inside without ``prices`` get this price table (the recipe's ``prices``)."""
    token = _PRICES.set(prices)
    try:
        yield
    finally:
        _PRICES.reset(token)


def get_engine(spec: str, *, prices: Mapping[str, Any] | None = None, **options: Any) -> Engine:
    """The engine for ``spec``, built once per process and reused (keyed by spec and options).

    ``prices`` is the recipe's price table (model -> input_per_mtok, output_per_mtok; default: the
    one set by ``priced``); prices in the spec itself win over it.
    """
    if prices is None:
        prices = _PRICES.get()
    parsed = parse_spec(spec)
    merged = {**price_options(spec, prices), **parsed.options, **options}
    try:
        key = (parsed.kind, parsed.model, parsed.url, tuple(sorted(merged.items())))
        hash(key)
    except TypeError as exc:
        raise EngineError(f"engine options for {redact(spec)!r} must be plain values: {exc}") from exc
    with _LOCK:  # held while loading, so concurrent shards load a model once
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _build(parsed, merged)
            _ENGINES[key] = engine
        return engine


def engine_concurrency(spec: str, **options: Any) -> int:
    """Requests an engine of ``spec`` (with ``options``, e.g. a policy's ``batch_size``) takes at
    once, without building it: its kind's concurrency option, or that option's default."""
    parsed = parse_spec(spec)
    option, default = engine_kind(parsed.kind).concurrency
    merged = {**parsed.options, **{k: v for k, v in options.items() if v is not None}}
    try:
        return max(1, int(merged.get(option, default)))
    except (TypeError, ValueError):
        return default


def loaded_engines() -> dict[str, Engine]:
    """The engines this process has built, by ``kind:model?options``."""
    with _LOCK:
        return {
            redact(f"{kind}:{model}{'@' + url if url else ''}")
            + ("?" + "&".join(f"{k}={v}" for k, v in opts) if opts else ""): engine
            for (kind, model, url, opts), engine in _ENGINES.items()
        }


def clear_engines() -> None:
    """Forget every cached engine (tests)."""
    with _LOCK:
        _ENGINES.clear()
