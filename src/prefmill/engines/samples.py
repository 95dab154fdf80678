"""Many samples of few prompts, column-wise: the synthesis stage's request to an engine.

``SampleBatch`` names each sample by its prompt and its sampling (indices into short lists) and its
seed, so a build of 100k prompts x k does not make a request object per sample for an engine that
can answer column-wise. ``generate_samples`` asks an engine for the ``candidates`` columns of a
batch: an engine with ``generate_columns(batch, progress)`` (an optional capability, like
``supports_assistant_prefix``) answers the batch as it is; any other gets one
``GenerationRequest`` per sample through ``generate`` and its ``Generation`` objects are turned into
columns here (``generation_columns``). Both give the same columns for the same engine.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from prefmill.engines.base import Engine, Generation, GenerationRequest, Messages, Progress, SamplingParams
from prefmill.errors import EngineError

#: The ``candidates`` columns an engine's answer fills, in this order.
COLUMNS = (
    "response",
    "n_tokens",
    "prompt_tokens",
    "finish_reason",
    "logprob",
    "latency_ms",
    "error",
    "cost_usd",
)

_FIELDS = operator.attrgetter(
    "text", "n_tokens", "prompt_tokens", "finish_reason", "logprob", "latency_ms", "error"
)


@dataclass(frozen=True)
class SampleBatch:
    """Samples column-wise: sample ``j`` is prompt ``messages[prompt_rows[j]]`` sampled with
    ``params[param_rows[j]]`` and seed ``seeds[j]``."""

    messages: Sequence[Messages]
    params: Sequence[SamplingParams]
    prompt_rows: Sequence[int]
    param_rows: Sequence[int]
    seeds: Sequence[int]

    def __len__(self) -> int:
        return len(self.seeds)

    def requests(self) -> list[GenerationRequest]:
        """One request per sample (for engines that answer request by request)."""
        messages, params = self.messages, self.params
        return [
            GenerationRequest(messages[p], params[i], s)
            for p, i, s in zip(_ints(self.prompt_rows), _ints(self.param_rows), self.seeds, strict=True)
        ]


def _ints(values: Sequence[int]) -> list[int]:
    tolist = getattr(values, "tolist", None)  # a numpy array: its Python ints at once
    return tolist() if tolist is not None else list(values)


def generation_columns(generations: Sequence[Generation]) -> dict[str, pa.Array]:
    """The ``COLUMNS`` of ``generations`` as Arrow arrays, in one pass over the objects; ``response``
    is null where ``error`` is set."""
    if generations:
        text, n_tokens, prompt_tokens, finish, logprob, latency, error = zip(
            *map(_FIELDS, generations), strict=True
        )
    else:
        text = n_tokens = prompt_tokens = finish = logprob = latency = error = ()
    if any(error):  # an error row keeps no text
        text = tuple(None if e else t for t, e in zip(text, error, strict=True))
    return {
        "response": pa.array(text, pa.string()),
        "n_tokens": pa.array(n_tokens, pa.int64()),
        "prompt_tokens": pa.array(prompt_tokens, pa.int64()),
        "finish_reason": pa.array(finish, pa.string()),
        "logprob": pa.array(logprob, pa.float64()),
        "latency_ms": pa.array(latency, pa.float64()),
        "error": pa.array(error, pa.string()),
        "cost_usd": pa.array([getattr(g, "cost_usd", None) for g in generations], pa.float64()),
    }


def _columnar(engine: Engine) -> Any:
    """``engine.generate_columns`` when it answers as the engine's own ``generate`` does: not for a
    subclass that overrides ``generate`` and inherits ``generate_columns`` (an engine built on the
    scripted one, say), whose answers would otherwise bypass its ``generate``."""
    columnar = getattr(engine, "generate_columns", None)
    if columnar is None:
        return None
    mro = type(engine).__mro__
    owner = {
        name: next((c for c in mro if name in c.__dict__), None) for name in ("generate", "generate_columns")
    }
    generate, columns = owner["generate"], owner["generate_columns"]
    if generate is not None and columns is not None and not issubclass(columns, generate):
        return None
    return columnar


def generate_samples(engine: Engine, batch: SampleBatch, progress: Progress | None = None) -> dict[str, Any]:
    """The ``COLUMNS`` of ``batch``'s samples from ``engine``, one row per sample in batch order."""
    columnar = _columnar(engine)
    if columnar is not None:
        columns = columnar(batch, progress)
        got = {name: len(columns[name]) for name in COLUMNS}
        if set(got.values()) != {len(batch)}:
            raise EngineError(
                f"engine {engine.name} returned columns of lengths {got} for {len(batch)} samples"
            )
        return {name: columns[name] for name in COLUMNS}
    generations = engine.generate(batch.requests(), progress)
    if len(generations) != len(batch):
        raise EngineError(
            f"engine {engine.name} returned {len(generations)} results for {len(batch)} requests"
        )
    return generation_columns(generations)
