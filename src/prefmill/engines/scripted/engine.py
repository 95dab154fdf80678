"""``ScriptedEngine``: a reply per request in about a microsecond, from its seed and last message."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from prefmill.engines.base import Generation, GenerationRequest, Messages, Progress, check_sampling

if TYPE_CHECKING:
    from prefmill.engines.samples import SampleBatch

#: The words replies are made of (a reply is ``words`` of them, chosen by the request's seed).
VOCABULARY = (  # noqa: SIM905 (one sentence reads better than 30 quoted words)
    "the answer is plain and short so every reader can check each step of it with care "
    "because a good reply names what it assumes then shows why the result holds here"
).split()


class ScriptedEngine:
    """Deterministic replies without a model: the same request and seed give the same text; two
    seeds give different texts (the reply's first word is ``seed % 997``, then words of ``VOCABULARY``
    from a place set by the seed and the last message; ``words // 2`` to ``words`` of them in all, by
    the seed, so a heuristic judge sees replies of different lengths). ``logprob`` and ``score`` are
    deterministic functions of the text."""

    supports_response_format = False

    def __init__(self, model: str = "echo", words: int = 12, batch_size: int | None = None) -> None:
        if words < 1:
            raise ValueError(f"scripted engine: words must be >= 1, got {words}")
        self.model = model
        self.name = f"scripted:{model}"
        self.words = int(words)
        self._tails: dict[int, list[str]] = {}  # n -> the reply's words after the first, by start

    def _tails_of(self, n: int) -> list[str]:
        if (tails := self._tails.get(n)) is None:
            size = len(VOCABULARY)
            tails = [
                "".join(" " + VOCABULARY[(start + i) % size] for i in range(n - 1)) for start in range(size)
            ]
            self._tails[n] = tails
        return tails

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out: list[Generation] = []
        checked: dict[int, str | None] = {}  # id(sampling) -> why it cannot be sampled
        digests: dict[int, tuple[int, int]] = {}  # id(messages) -> (crc of the last message, its words)
        size, words, half = len(VOCABULARY), self.words, self.words // 2 + 1
        for r in requests:
            s = r.sampling
            if (problem := checked.get(id(s), "")) == "":
                problem = checked[id(s)] = check_sampling(s)
            if problem is not None:
                out.append(Generation.failed(problem))
                continue
            if (digest := digests.get(id(r.messages))) is None:
                last = r.messages[-1]["content"] if r.messages else ""
                digest = digests[id(r.messages)] = (zlib.crc32(last.encode()), len(last.split()))
            wanted = words - r.seed % half  # words//2 .. words: lengths differ
            n = min(wanted, s.max_new_tokens)
            text = str(r.seed % 997) + self._tails_of(n)[(r.seed ^ digest[0]) % size]
            out.append(Generation(text, n, digest[1], "length" if n < wanted else "stop", -0.5 * n, 0.0))
        if progress is not None and out:
            progress(len(out))
        return out

    def generate_columns(self, batch: SampleBatch, progress: Progress | None = None) -> dict[str, Any]:
        """``generate`` of ``batch.requests()`` as ``engines.samples`` columns, computed column-wise
        (the same values: a unit test holds it): the reply of a sample is its first word and one of
        the ``words x len(VOCABULARY)`` tails, picked by numpy and joined by Arrow."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(batch)
        size, words, half = len(VOCABULARY), self.words, self.words // 2 + 1
        problems = [check_sampling(s) for s in batch.params]
        last = [m[-1]["content"] if m else "" for m in batch.messages]
        crc = np.array([zlib.crc32(t.encode()) for t in last], np.int64)
        prompt_words = np.array([len(t.split()) for t in last], np.int64)
        prows = np.asarray(batch.prompt_rows, np.int64)
        srows = np.asarray(batch.param_rows, np.int64)
        seeds = np.asarray(batch.seeds, np.int64)  # seeds are 63-bit
        limit = np.array([s.max_new_tokens for s in batch.params], np.int64)[srows]
        wanted = words - seeds % half
        count = np.minimum(wanted, limit)
        start = (seeds ^ crc[prows]) % size
        tails = pa.array([t for m in range(1, words + 1) for t in self._tails_of(m)], pa.string())
        pick = (np.maximum(count, 1) - 1) * size + start  # count < 1 only on error rows
        text = pc.binary_join_element_wise(
            pa.array(seeds % 997).cast(pa.string()), tails.take(pa.array(pick)), ""
        )
        finish = pc.if_else(pa.array(count < wanted), "length", "stop")
        columns: dict[str, Any] = {
            "response": text,
            "n_tokens": pa.array(count, pa.int64()),
            "prompt_tokens": pa.array(prompt_words[prows], pa.int64()),
            "finish_reason": finish,
            "logprob": pa.array(-0.5 * count, pa.float64()),
            "latency_ms": pa.array(np.zeros(n), pa.float64()),
            "error": pa.nulls(n, pa.string()),
            "cost_usd": pa.nulls(n, pa.float64()),
        }
        if any(p is not None for p in problems):  # rows of an invalid sampling are error rows
            failed = pa.array(np.array([p is not None for p in problems], bool)[srows])
            error = pa.array(np.array(problems, object)[srows], pa.string())
            for name, value in (("response", None), ("prompt_tokens", 0), ("finish_reason", None)):
                columns[name] = pc.if_else(failed, pa.scalar(value, columns[name].type), columns[name])
            columns["n_tokens"] = pc.if_else(failed, 0, columns["n_tokens"])
            columns["logprob"] = pc.if_else(failed, pa.scalar(None, pa.float64()), columns["logprob"])
            columns["error"] = error
        if progress is not None and n:
            progress(n)
        return columns

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """``-0.5`` per word of the response and its end of turn: longer replies are less likely."""
        return [-0.5 * (len(response.split()) + 1) for _, response in items]
