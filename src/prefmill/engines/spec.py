"""What an engine kind declares (``EngineKind``) and what a parsed spec is (``EngineSpec``).

Each kind is one subpackage of ``prefmill.engines`` (``transformers/``, ``vllm/``, ``openai/``) whose
``__init__`` sets ``KIND = EngineKind(...)`` and imports nothing heavy; ``engines.registry`` finds
them. Nothing here imports torch, vllm or httpx.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefmill.engines.base import Engine
from prefmill.errors import EngineError


@dataclass(frozen=True)
class EngineSpec:
    """A parsed engine spec: kind ('transformers', 'vllm', 'openai'), model, and options."""

    kind: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # kinds with ``url=True`` (openai): the endpoint after '@'


@dataclass(frozen=True)
class EngineKind:
    """One engine kind: its spec prefix, options, install extra and factory.

    ``factory(spec, options)`` builds the engine; it runs after the options were checked against
    ``options`` and imports the heavy code itself (nothing is imported before a build).
    ``engine`` is ``"module:Class"`` of the engine class (``prefmill.engines.<Class>`` loads it).
    ``extra`` is the ``prefmill[...]`` extra that installs what the kind needs (None: the base
    install has it); ``install`` is the exact hint a missing package error gives.
    ``url``: specs of this kind are ``kind:MODEL@URL``. ``priced``: the recipe's ``prices`` table
    applies to its models (options ``input_per_mtok`` / ``output_per_mtok``). ``concurrency``: the
    option (and its default) that says how many requests the engine takes at once.
    """

    name: str
    engine: str
    options: frozenset[str]
    factory: Callable[[EngineSpec, dict[str, Any]], Engine]
    examples: tuple[str, ...]
    summary: str
    extra: str | None = None
    install: str | None = None
    url: bool = False
    priced: bool = False
    #: (option, default): requests one engine of this kind takes at once, how many the stage skeleton
    #: keeps queued across shards (DESIGN §4)
    concurrency: tuple[str, int] = ("batch_size", 64)
    #: whether a request's result is the same whatever other requests share its batch. In-process
    #: engines pad and reduce differently per batch (log-probs differ in the last digits), so a
    #: window of shards merged by timing would make rows depend on timing: their stages batch fixed
    #: groups of shards in lockstep instead (False; ``engines.lockstep``).
    batch_invariant: bool = True

    @property
    def class_name(self) -> str:
        return self.engine.rpartition(":")[2]

    def engine_class(self) -> type:
        """The engine class (imports its module: torch, vllm or httpx)."""
        module, _, name = self.engine.partition(":")
        return getattr(importlib.import_module(module), name)

    def check_options(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - self.options)
        if unknown:
            raise EngineError(
                f"{self.name} engine: unknown option(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(self.options))}"
            )


# --- endpoint URLs: where the model name ends ---------------------------------------------------------

#: The '@' that starts an endpoint URL (``@http://``, ``@https://``...), not one inside userinfo.
_URL_START = re.compile(r"@(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_model_url(text: str) -> tuple[str, str, str]:
    """``MODEL@URL`` -> (model, '@', url), at the '@' that starts the URL's scheme, so an '@' in the
    URL's userinfo (``http://user:key@host``) or in the model name stays where it belongs. Without a
    scheme, at the last '@' (the engine then asks for http:// or https://)."""
    found = _URL_START.search(text)
    if found is None:
        return text.rpartition("@")
    return text[: found.start()], "@", text[found.end() :]
