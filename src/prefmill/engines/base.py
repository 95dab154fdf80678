"""The batch protocol every generation engine implements (DESIGN §4).

Nothing here imports torch: tasks depend on these types without loading a model stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, str]]
"""A chat prompt: ``[{"role": "user", "content": "..."}, ...]``."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one response; ``temperature == 0`` means greedy."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 128


JsonSchema = dict[str, Any]
"""A JSON schema (draft 2020-12 subset that OpenAI's strict mode, vLLM and llguidance accept)."""


@dataclass(frozen=True)
class GenerationRequest:
    """One response to generate; the same request and seed give the same text.

    ``response_format``: a JSON schema the reply must follow. Engines whose class sets
    ``supports_response_format = True`` constrain decoding to it (structured output); callers check
    that flag first and fall back to a format stated in the prompt plus a tolerant parser.

    ``assistant_prefix``: the start of the assistant's reply; the engine continues it (after the chat
    template's assistant header, with no end-of-turn after the prefix) and returns the continuation
    only, its leading whitespace kept, so ``assistant_prefix + text`` is the whole reply. Engines
    whose class sets ``supports_assistant_prefix = True`` honour it (``can_continue``); step-level
    rollouts start mid-answer with it.
    """

    messages: Messages
    sampling: SamplingParams
    seed: int
    response_format: JsonSchema | None = None
    assistant_prefix: str | None = None


@dataclass
class Generation:
    """The result of one request; ``error`` is set (and ``text`` is None) when it failed."""

    text: str | None
    n_tokens: int
    prompt_tokens: int
    finish_reason: str | None  # 'stop' | 'length' | None
    logprob: float | None  # sum log-prob of the generated tokens under the (untempered) model
    latency_ms: float
    error: str | None = None
    cost_usd: float | None = None  # from the recipe's price table; None when the model has no price
    attempts: int = 1  # HTTP attempts this row took (remote engines; 1 for in-process engines)

    @classmethod
    def failed(
        cls, error: str, *, prompt_tokens: int = 0, latency_ms: float = 0.0, attempts: int = 1
    ) -> Generation:
        """An error row."""
        return cls(None, 0, prompt_tokens, None, None, latency_ms, error, None, attempts)


def check_sampling(s: SamplingParams) -> str | None:
    """Why ``s`` cannot be sampled (an error row's text), or None when it is valid."""
    if not (s.temperature >= 0 and math.isfinite(s.temperature)):
        return f"invalid sampling: temperature must be >= 0, got {s.temperature}"
    if not 0 < s.top_p <= 1:
        return f"invalid sampling: top_p must be in (0, 1], got {s.top_p}"
    if s.max_new_tokens < 1:
        return f"invalid sampling: max_new_tokens must be >= 1, got {s.max_new_tokens}"
    return None


def can_continue(engine: object) -> bool:
    """Whether ``engine`` continues a request's ``assistant_prefix`` (its ``supports_assistant_prefix``)."""
    return bool(getattr(engine, "supports_assistant_prefix", False))


def reply_text(text: str, prefix: str | None) -> str:
    """An engine's returned text: stripped, or, continuing a prefix, only right-stripped (the
    continuation's leading space or newline belongs between the prefix and it)."""
    return text.strip() if prefix is None else text.rstrip()


Progress = Callable[[int], None]
"""Called with the number of requests just finished (an increment, like ``tqdm.update``)."""


@runtime_checkable
class Engine(Protocol):
    """A generation backend: batched sampling and batched log-prob scoring."""

    name: str  # e.g. "transformers:smollm2"; stored as the ``generator`` of candidates
    model: str  # the model identifier
    supports_response_format: bool  # honours ``GenerationRequest.response_format``
    # Engines may also set ``supports_assistant_prefix = True`` (see ``can_continue``): not part of
    # the protocol, so that engines written before it still satisfy it.

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """One ``Generation`` per request, in request order; per-request failures are error rows."""
        ...

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """Sum log-prob of each response (and its end-of-turn token) given the chat prompt."""
        ...
