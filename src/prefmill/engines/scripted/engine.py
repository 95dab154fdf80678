"""``ScriptedEngine``: a reply per request in about a microsecond, from its seed and last message."""

from __future__ import annotations

import zlib

from prefmill.engines.base import Generation, GenerationRequest, Messages, Progress, check_sampling

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

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """``-0.5`` per word of the response and its end of turn: longer replies are less likely."""
        return [-0.5 * (len(response.split()) + 1) for _, response in items]
