"""A judge's requests to its engine in batches bounded by tokens, with progress inside the shard.

An LLM judge asks one request per candidate (or pair, order, criterion) of a shard. Sent as one
``generate`` call, a shard of long responses is one batch of the engine's ``batch_size`` sequences of
any length, and the memory grows with the inputs. ``generate_in_budget`` cuts the requests into calls
of at most ``budget`` tokens each, counting a request's prompt (estimated from its characters) plus its
``max_new_tokens``: memory stays bounded by the budget, whatever the inputs. Batching changes speed,
never a verdict (each request has its own seed). After each call it reports the tokens generated and a
note (requests done, tok/s, ETA) to the progress display (``prefmill.progress``), and the share of
the shard's units its requests stand for (``progress.calls_done``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prefmill.engines.base import Engine, Generation, GenerationRequest
from prefmill.errors import EngineError
from prefmill.progress import calls_done, count_generated, eta, reporter

#: Prompt plus new tokens of one engine call of a judge, by default: 64 requests of ~250 prompt
#: tokens and 256 new ones (the transformers engine's default batch on 2 CPU cores).
TOKEN_BUDGET = 32_768
#: Characters per token when estimating a prompt's length without its tokenizer (English text is
#: ~4; a lower number over-counts, so a batch stays within the budget).
CHARS_PER_TOKEN = 3


def request_tokens(request: GenerationRequest) -> int:
    """An upper estimate of the tokens ``request`` holds in the engine: its prompt and new tokens."""
    chars = sum(len(m.get("content") or "") for m in request.messages)
    return chars // CHARS_PER_TOKEN + 8 * len(request.messages) + request.sampling.max_new_tokens


def token_batches(requests: Sequence[GenerationRequest], budget: int = TOKEN_BUDGET) -> Iterator[range]:
    """Consecutive ranges of ``requests`` of at most ``budget`` tokens each (a request over the
    budget alone is a batch of one)."""
    start, used = 0, 0
    for i, request in enumerate(requests):
        need = request_tokens(request)
        if i > start and used + need > budget:
            yield range(start, i)
            start, used = i, 0
        used += need
    if start < len(requests):
        yield range(start, len(requests))


def generate_in_budget(
    engine: Engine,
    requests: list[GenerationRequest],
    *,
    budget: int = TOKEN_BUDGET,
    stage: str = "evaluation",
    label: str = "judge",
) -> list[Generation]:
    """``engine.generate(requests)`` in token-bounded calls, in request order, with progress."""
    out: list[Generation] = []
    started = time.perf_counter()
    tokens = 0
    for batch in token_batches(requests, budget):
        part = engine.generate([requests[i] for i in batch])
        if len(part) != len(batch):
            raise EngineError(f"engine {engine.name} returned {len(part)} results for {len(batch)} requests")
        out.extend(part)
        count_generated(part)
        new = sum(g.n_tokens for g in part)
        tokens += new
        elapsed = max(time.perf_counter() - started, 1e-9)
        note = f"{label}: {len(out):,}/{len(requests):,} requests · {tokens / elapsed:.3g} tok/s"
        reporter().advance(stage, tokens=new)
        calls_done(len(out), len(requests))  # the stage's bar moves per batch, not per shard
        left = eta(len(out), len(requests), elapsed)
        reporter().note(stage, note + (f" · {left}" if left else ""))
    return out
