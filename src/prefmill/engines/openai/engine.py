"""The openai engine: any OpenAI-compatible chat endpoint (vLLM's server, SGLang, TGI, OpenAI) as a
batch engine, built on the official ``openai`` client (``AsyncOpenAI``, see ``transport``).

``generate`` sends the batch as asynchronous requests with a bounded number in flight. The bound
adapts (AIMD, ``limiter``): it halves when the server answers 429 and grows by one per window of
successes, up to ``max_concurrency``. Each request is retried (``transport``); a request that still
fails, or fails for good (400, 401, 404...), becomes an error row and the rest of the batch is kept.
Costs come from ``pricing``.

All calls share one asyncio loop in a thread of the engine (``batching.LoopThread``), one
``AsyncOpenAI`` client and one limiter: when the stage skeleton runs several shards at once, their
requests are in flight together, and the adaptive concurrency is the only bound on them.

Seeds: by default every candidate is its own request (``n=1``) carrying its own ``seed``, so its
text depends only on its prompt, sampling and seed, exactly what the ``sampling`` column records,
and a retry of one failed row reproduces that row. With ``max_n=K`` up to K requests that share the
prompt and sampling go out as one request with ``n=K`` and the first one's seed: the prompt is
processed (and, on a paid API, billed) once per group instead of once per sample, but a sample then
depends on the group it was generated in.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice

from prefmill.engines.base import (
    Generation,
    GenerationRequest,
    Messages,
    Progress,
    check_sampling,
    reply_text,
)
from prefmill.engines.batching import LoopThread
from prefmill.engines.openai.limiter import AimdLimiter
from prefmill.engines.openai.pricing import Prices
from prefmill.engines.openai.transport import (
    EngineStats,
    RequestFailed,
    Transport,
    fail,
    preview,
    redact_url,
    split_credentials,
)
from prefmill.errors import EngineError

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


@dataclass
class _Group:
    """Requests that go out as one HTTP request (``n = len(rows)``)."""

    rows: list[int]
    messages: Messages
    request: GenerationRequest


class OpenAIEngine:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint, through ``AsyncOpenAI``.

    Options (spec ``openai:MODEL@URL?key=value&...`` or keyword arguments):
    ``max_concurrency`` (16) requests in flight at most, ``min_concurrency`` (1) the floor the 429
    back-off stops at, ``timeout`` (120 s per attempt), ``connect_timeout`` (10 s), ``max_retries``
    (6 retries after the first attempt), ``backoff`` (0.5 s first wait) and ``max_backoff`` (30 s),
    ``api_key_env`` (the environment variable holding the key, default ``OPENAI_API_KEY``; a
    missing default variable sends no key, for local servers), ``max_n`` (1: samples sharing prompt
    and sampling per request), ``logprobs`` (true: ask for the sampled tokens' log-probs),
    ``input_per_mtok`` / ``output_per_mtok`` (USD per million tokens; the recipe's ``prices`` set
    them), ``structured_output`` (true: a request's ``response_format`` JSON schema is sent as
    ``response_format: {type: json_schema, strict: true}``; set false for a server without it).
    ``batch_size`` is accepted for symmetry with the local engines and ignored.

    A request's ``assistant_prefix`` goes as a final assistant message with
    ``continue_final_message: true`` and ``add_generation_prompt: false`` in the client's
    ``extra_body`` (vLLM's and SGLang's servers continue it and return the continuation only);
    OpenAI's own API does not accept them.
    """

    supports_assistant_prefix = True

    def __init__(
        self,
        model: str,
        url: str,
        *,
        max_concurrency: int = 16,
        min_concurrency: int = 1,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        api_key_env: str | None = None,
        max_n: int = 1,
        logprobs: bool = True,
        input_per_mtok: float | None = None,
        output_per_mtok: float | None = None,
        batch_size: int | None = None,
        structured_output: bool = True,
    ) -> None:
        problems = []
        if not url.startswith(("http://", "https://")):
            problems.append(f"the URL must start with http:// or https://, got {url!r}")
        if max_concurrency < 1 or min_concurrency < 1:
            problems.append("max_concurrency and min_concurrency must be >= 1")
        if timeout <= 0 or connect_timeout <= 0:
            problems.append("timeout and connect_timeout must be > 0 seconds")
        if max_retries < 0 or backoff < 0 or max_backoff < 0:
            problems.append("max_retries, backoff and max_backoff must be >= 0")
        if max_n < 1:
            problems.append(f"max_n must be >= 1, got {max_n}")
        prices = Prices(input_per_mtok, output_per_mtok)
        problems.extend(prices.problems())
        if problems:
            raise EngineError(f"openai engine {model}@{redact_url(url)}: " + "; ".join(problems))
        key_env = api_key_env or DEFAULT_API_KEY_ENV
        key = os.environ.get(key_env)
        if api_key_env and not key:
            raise EngineError(
                f"openai engine {model}@{redact_url(url)}: the environment variable {key_env} (api_key_env) "
                f"is not set; export {key_env}=<your key>"
            )
        self.key_env = key_env
        self.url = split_credentials(url.rstrip("/"))[0]  # userinfo travels only as the transport's auth
        self.model = model
        self.name = f"openai:{model}@{redact_url(self.url)}"
        self.max_concurrency = int(max_concurrency)
        self.min_concurrency = int(min_concurrency)
        self.max_n = int(max_n)
        self.logprobs = bool(logprobs)
        self.prices = prices
        self.supports_response_format = bool(structured_output)
        self.stats = EngineStats()
        self.transport = Transport(
            url.rstrip("/"),
            model=model,
            key=key,
            key_env=key_env,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            stats=self.stats,
        )
        self.last_limiter: AimdLimiter | None = None  # the shared limiter, once a call made it
        self._loop: LoopThread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._start_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine({self.name!r}, max_concurrency={self.max_concurrency}, max_n={self.max_n})"

    # ------------------------------------------------------------------ pricing

    @property
    def input_per_mtok(self) -> float | None:
        return self.prices.input_per_mtok

    @property
    def output_per_mtok(self) -> float | None:
        return self.prices.output_per_mtok

    @property
    def priced(self) -> bool:
        return self.prices.priced

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        """USD for these tokens under the configured prices, or None when the model has none."""
        return self.prices.cost(prompt_tokens, completion_tokens)

    @property
    def max_retries(self) -> int:
        return self.transport.max_retries

    # ------------------------------------------------------------------ generate

    def _groups(self, requests: list[GenerationRequest], results: list[Generation | None]) -> list[_Group]:
        groups: list[_Group] = []
        open_groups: dict[str, _Group] = {}
        for i, req in enumerate(requests):
            problem = check_sampling(req.sampling)
            if problem is not None:
                results[i] = Generation.failed(problem)
                continue
            key = (
                json.dumps(
                    [req.messages, req.sampling.__dict__, req.response_format, req.assistant_prefix],
                    sort_keys=True,
                )
                if self.max_n > 1
                else ""
            )
            group = open_groups.get(key) if key else None
            if group is None or len(group.rows) >= self.max_n:
                group = _Group([i], req.messages, req)
                groups.append(group)
                if key:
                    open_groups[key] = group
            else:
                group.rows.append(i)
        return groups

    def _payload(self, group: _Group) -> dict[str, Any]:
        """``chat.completions.create``'s keyword arguments for one group (what the client does not
        know, vLLM's continuation fields, goes in ``extra_body``)."""
        s = group.request.sampling
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": group.messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "seed": group.request.seed,
        }
        if (prefix := group.request.assistant_prefix) is not None:
            payload["messages"] = [*group.messages, {"role": "assistant", "content": prefix}]
            payload["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        if len(group.rows) > 1:
            payload["n"] = len(group.rows)
        if self.logprobs:
            payload["logprobs"] = True
        schema = group.request.response_format
        if schema is not None and self.supports_response_format:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema, "strict": True},
            }
        return payload

    @staticmethod
    def _parse_chat(n: int) -> Callable[[ChatCompletion], tuple[list[Choice], Any]]:
        def parse(completion: ChatCompletion) -> tuple[list[Choice], Any]:
            choices = completion.choices
            if not isinstance(choices, list) or len(choices) != n:
                got = len(choices) if isinstance(choices, list) else "no"
                raise fail(f"expected {n} choice(s), got {got}: {preview(_dump(completion))}", retryable=True)
            ordered = sorted(choices, key=lambda c: c.index if isinstance(getattr(c, "index", 0), int) else 0)
            for c in ordered:
                if not isinstance(getattr(getattr(c, "message", None), "content", None), str):
                    raise fail(f"a choice has no message content: {preview(_dump(c))}", retryable=True)
            return ordered, completion.usage

        return parse

    def _rows(
        self, group: _Group, parsed: tuple[list[Choice], Any], ms: float, attempts: int
    ) -> list[Generation]:
        choices, usage = parsed
        n = len(choices)
        prompt_tokens = _int(getattr(usage, "prompt_tokens", 0))
        total_completion = _int(getattr(usage, "completion_tokens", 0))
        counts: list[int | None] = []
        logprobs: list[float | None] = []
        for c in choices:
            content = getattr(getattr(c, "logprobs", None), "content", None)
            if isinstance(content, list) and content:
                counts.append(len(content))
                logprobs.append(float(sum(float(getattr(t, "logprob", 0.0) or 0.0) for t in content)))
            else:
                counts.append(None)
                logprobs.append(None)
        if n == 1:
            counts = [total_completion or counts[0] or 0]
        elif any(c is None for c in counts):  # no per-choice counts: share the total by text length
            lengths = [max(1, len(c.message.content or "")) for c in choices]
            counts = [round(total_completion * k / sum(lengths)) for k in lengths]
        rows = []
        for c, tokens, lp in zip(choices, counts, logprobs, strict=True):
            tokens = int(tokens or 0)
            reason = getattr(c, "finish_reason", None)
            rows.append(
                Generation(
                    text=reply_text(c.message.content or "", group.request.assistant_prefix),
                    n_tokens=tokens,
                    prompt_tokens=prompt_tokens,
                    finish_reason=reason if isinstance(reason, str) else None,
                    logprob=lp,
                    latency_ms=ms,
                    error=None,
                    cost_usd=self.cost(prompt_tokens / n, tokens),  # the prompt is billed once per group
                    attempts=attempts,
                )
            )
        return rows

    async def _generate_async(
        self, requests: list[GenerationRequest], progress: Progress | None
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        groups = self._groups(requests, results)
        early = sum(r is not None for r in results)
        if early and progress is not None:
            progress(early)
        client, limiter = self._shared()

        async def run(client: openai.AsyncOpenAI, group: _Group) -> None:
            started = time.perf_counter()
            try:
                parsed, ms, attempts = await self.transport.post(
                    client, limiter, self._payload(group), self._parse_chat(len(group.rows))
                )
                rows = self._rows(group, parsed, ms, attempts)
            except RequestFailed as exc:
                self.stats.failed += 1
                ms = (time.perf_counter() - started) * 1000
                rows = [Generation.failed(str(exc), latency_ms=ms) for _ in group.rows]
            except Exception as exc:  # a bug in parsing must not lose the batch
                self.stats.failed += 1
                rows = [Generation.failed(f"{type(exc).__name__}: {exc}") for _ in group.rows]
            self.stats.requests += 1
            for i, row in zip(group.rows, rows, strict=True):
                results[i] = row
            if progress is not None:
                progress(len(group.rows))

        await asyncio.gather(*(run(client, g) for g in groups))
        self._note(limiter)
        return [r if r is not None else Generation.failed("internal error: no result") for r in results]

    def _shared(self) -> tuple[openai.AsyncOpenAI, AimdLimiter]:
        """The client and limiter every call shares (made on the engine's loop on first use)."""
        if self._client is None or self.last_limiter is None:
            self._client = self.transport.client(self.max_concurrency)
            self.last_limiter = AimdLimiter(self.max_concurrency, self.min_concurrency)
        return self._client, self.last_limiter

    def _note(self, limiter: AimdLimiter) -> None:
        self.stats.limit_decreases = limiter.decreases
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, limiter.peak_in_flight)

    def _run(self, factory: Callable[[], Any]) -> Any:
        """Run a coroutine on the engine's loop (started on first use), blocking this thread."""
        with self._start_lock:
            if self._loop is None:
                self._loop = LoopThread(f"prefmill-{self.model}")
        return self._loop.run(factory)

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """One ``Generation`` per request, in order; failed requests are error rows."""
        if not requests:
            return []
        return self._run(lambda: self._generate_async(requests, progress))

    # ------------------------------------------------------------------ score

    def _score_payload(self, messages: Messages, *, continue_final: bool, generation_prompt: bool) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "extra_body": {
                "prompt_logprobs": 0,
                "add_generation_prompt": generation_prompt,
                "continue_final_message": continue_final,
            },
        }

    def _parse_prompt_logprobs(self, completion: ChatCompletion) -> list[float | None]:
        values = _extra(completion, "prompt_logprobs")  # vLLM's field, beside the typed ones
        if values is None:
            choices = completion.choices if isinstance(completion.choices, list) else []
            values = _extra(choices[0], "prompt_logprobs") if choices else None
        if not isinstance(values, list):
            raise RequestFailed(
                f"the endpoint {redact_url(self.url)} returned no prompt_logprobs; score() needs a server "
                "that supports them (vLLM's OpenAI-compatible server does)",
                retryable=False,
            )
        out: list[float | None] = []
        for entry in values:
            if not isinstance(entry, dict) or not entry:
                out.append(None)
                continue
            # vLLM: {token_id: {logprob, rank, decoded_token}}: the prompt's own token is the one
            # with the lowest rank when it is not the top-1 (prompt_logprobs=0 returns just it).
            best = min(entry.values(), key=lambda v: v.get("rank") or 0 if isinstance(v, dict) else 0)
            out.append(float(best["logprob"]) if isinstance(best, dict) else None)
        return out

    async def _score_one(
        self, client: openai.AsyncOpenAI, limiter: AimdLimiter, messages: Messages, response: str
    ) -> float:
        full = [*messages, {"role": "assistant", "content": response}]

        def usage(completion: ChatCompletion) -> int:
            n = getattr(completion.usage, "prompt_tokens", None)
            if not isinstance(n, int):
                raise fail("no usage.prompt_tokens in the body", retryable=True)
            return n

        post = self.transport.post
        prompt = self._score_payload(messages, continue_final=False, generation_prompt=True)
        prompt_n, _, _ = await post(client, limiter, prompt, usage)
        cont = self._score_payload(full, continue_final=True, generation_prompt=False)
        cont_n, _, _ = await post(client, limiter, cont, usage)
        logprobs, _, _ = await post(
            client,
            limiter,
            self._score_payload(full, continue_final=False, generation_prompt=False),
            self._parse_prompt_logprobs,
        )
        # positions [prompt_n, cont_n) are the response; position cont_n is the end-of-turn token
        span = logprobs[prompt_n : cont_n + 1]
        if len(span) != cont_n + 1 - prompt_n or any(v is None for v in span):
            return math.nan
        return float(sum(v for v in span if v is not None))

    async def _score_async(self, items: list[tuple[Messages, str]]) -> list[float]:
        client, limiter = self._shared()
        outcomes = await asyncio.gather(
            *(self._score_one(client, limiter, m, r) for m, r in items), return_exceptions=True
        )
        self._note(limiter)
        out: list[float] = []
        for outcome in outcomes:
            if isinstance(outcome, RequestFailed) and "prompt_logprobs" in str(outcome):
                raise EngineError(str(outcome))
            if isinstance(outcome, RequestFailed) and "HTTP 400" in str(outcome):
                raise EngineError(
                    f"{outcome}; score() needs prompt_logprobs, add_generation_prompt and "
                    "continue_final_message on /chat/completions (vLLM's OpenAI-compatible server)"
                )
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, RequestFailed):
                    raise outcome
                out.append(math.nan)
            else:
                out.append(outcome)
        return out

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """Sum log-prob of each response and its end-of-turn token (``nan`` where a request failed).

        Needs ``prompt_logprobs`` (vLLM's server); other endpoints raise ``EngineError``.
        """
        if not items:
            return []
        return self._run(lambda: self._score_async(items))


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _extra(model: Any, name: str) -> Any:
    """A field the server sent beyond the client's types (kept in ``model_extra``), or None."""
    extra = getattr(model, "model_extra", None)
    return extra.get(name) if isinstance(extra, dict) else None


def _dump(model: Any) -> str:
    """A completion (or a part of one) as JSON for an error message."""
    try:
        return model.to_json(indent=None, warnings=False)
    except Exception:
        return repr(model)
