"""Any OpenAI-compatible chat endpoint (vLLM's server, SGLang, TGI, OpenAI) as a batch engine.

``generate`` sends the batch as asynchronous HTTP requests with a bounded number in flight. The bound
adapts (AIMD): it halves when the server answers 429 and grows by one per window of successes, up to
``max_concurrency``. Each request is retried with exponential backoff and full jitter (tenacity) on
429, 408, 5xx, timeouts, dropped connections and unreadable bodies, honouring ``Retry-After``; a
request that still fails, or fails for good (400, 401, 404...), becomes an error row and the rest of
the batch is kept.

The HTTP layer is ``httpx`` and the retry policy ``tenacity`` rather than the ``openai`` client's own
retries: those retry inside the client, so a 429 never reaches the concurrency controller, and
they give no hook for per-row attempt counts or for treating a truncated body as retryable.

Seeds: by default every candidate is its own request (``n=1``) carrying its own ``seed``, so its
text depends only on its prompt, sampling and seed, exactly what the ``sampling`` column records,
and a retry of one failed row reproduces that row. With ``max_n=K`` up to K requests that share the
prompt and sampling go out as one request with ``n=K`` and the first one's seed: the prompt is
processed (and, on a paid API, billed) once per group instead of once per sample, but a sample then
depends on the group it was generated in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from prefmill.engines.base import Generation, GenerationRequest, Messages, Progress, check_sampling
from prefmill.errors import EngineError

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
OPTIONS = frozenset(
    {
        "max_concurrency",
        "min_concurrency",
        "timeout",
        "connect_timeout",
        "max_retries",
        "backoff",
        "max_backoff",
        "api_key_env",
        "max_n",
        "logprobs",
        "input_per_mtok",
        "output_per_mtok",
        "batch_size",
        "structured_output",
    }
)
_RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
_BODY_PREVIEW = 200
T = TypeVar("T")


class RequestFailed(Exception):
    """One HTTP attempt failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        throttled: bool = False,
        retry_after: float | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason or message.split(":")[0][:40]  # a short label for the stats
        self.retryable = retryable
        self.throttled = throttled
        self.retry_after = retry_after


class _Retryable(RequestFailed):
    """The subclass tenacity retries on (a permanent failure is raised as plain ``RequestFailed``)."""


def _fail(message: str, *, retryable: bool, **kw: Any) -> RequestFailed:
    return (_Retryable if retryable else RequestFailed)(message, retryable=retryable, **kw)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class AimdLimiter:
    """Adaptive bound on requests in flight: additive increase, multiplicative decrease on 429.

    One decrease per congestion window: a 429 from a request that started before the last decrease
    does not halve the bound again (a burst of 429s from one overload counts once).
    """

    def __init__(self, max_limit: int, min_limit: int = 1) -> None:
        self.max_limit = max(1, int(max_limit))
        self.min_limit = max(1, min(int(min_limit), self.max_limit))
        self.limit = float(self.max_limit)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self.limits: list[float] = [self.limit]  # every change, for reports and tests
        self._epoch = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a slot; returns the congestion epoch the request starts in."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return self._epoch

    async def release(self, epoch: int, *, ok: bool, throttled: bool) -> None:
        async with self._cond:
            self.in_flight -= 1
            if throttled and epoch == self._epoch and self.limit > self.min_limit:
                self.limit = max(float(self.min_limit), self.limit / 2)
                self._epoch += 1
                self.decreases += 1
                self.limits.append(self.limit)
            elif ok and self.limit < self.max_limit:
                self.limit = min(float(self.max_limit), self.limit + 1 / self.limit)
                self.limits.append(self.limit)
            self._cond.notify_all()


@dataclass
class EngineStats:
    """Cumulative counters of one engine (all ``generate`` / ``score`` calls of the process)."""

    requests: int = 0  # HTTP requests that completed their retries (one per group)
    attempts: int = 0  # HTTP attempts, retries included
    retries: int = 0
    throttled: int = 0  # attempts answered 429
    failed: int = 0  # requests that became error rows
    limit_decreases: int = 0
    peak_in_flight: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)  # failed attempts by reason


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _preview(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _BODY_PREVIEW else text[:_BODY_PREVIEW] + "..."


@dataclass
class _Group:
    """Requests that go out as one HTTP request (``n = len(rows)``)."""

    rows: list[int]
    messages: Messages
    request: GenerationRequest


class OpenAIEngine:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

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
    """

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
        for name, price in (("input_per_mtok", input_per_mtok), ("output_per_mtok", output_per_mtok)):
            if price is not None and not (price >= 0 and math.isfinite(price)):
                problems.append(f"{name} must be a price >= 0 in USD per million tokens, got {price}")
        if problems:
            raise EngineError(f"openai engine {model}@{url}: " + "; ".join(problems))
        key_env = api_key_env or DEFAULT_API_KEY_ENV
        key = os.environ.get(key_env)
        if api_key_env and not key:
            raise EngineError(
                f"openai engine {model}@{url}: the environment variable {key_env} (api_key_env) is not set; "
                f"export {key_env}=<your key>"
            )
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.key_env = key_env
        self.url = url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}@{_redact_url(self.url)}"
        self.max_concurrency = int(max_concurrency)
        self.min_concurrency = int(min_concurrency)
        self.timeout = httpx.Timeout(float(timeout), connect=float(connect_timeout))
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_n = int(max_n)
        self.logprobs = bool(logprobs)
        self.input_per_mtok = input_per_mtok
        self.output_per_mtok = output_per_mtok
        self.supports_response_format = bool(structured_output)
        self.stats = EngineStats()
        self.last_limiter: AimdLimiter | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine({self.name!r}, max_concurrency={self.max_concurrency}, max_n={self.max_n})"

    # ------------------------------------------------------------------ pricing

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None or self.output_per_mtok is not None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        """USD for these tokens under the configured prices, or None when the model has none."""
        if not self.priced:
            return None
        return (
            prompt_tokens * (self.input_per_mtok or 0.0) + completion_tokens * (self.output_per_mtok or 0.0)
        ) / 1e6

    # ------------------------------------------------------------------ HTTP with retries

    def _wait(self, state: RetryCallState) -> float:
        base = wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)(state)
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:  # the server said when; add a little jitter so clients spread out
            return min(max(after, 0.0), max(self.max_backoff, 0.0)) + base * 0.1
        return base

    async def _attempt(
        self, client: httpx.AsyncClient, limiter: AimdLimiter, path: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], float]:
        epoch = await limiter.acquire()
        ok = throttled = False
        started = time.perf_counter()
        self.stats.attempts += 1
        try:
            try:
                response = await client.post(self.url + path, json=payload, headers=self._headers)
            except httpx.TimeoutException as exc:
                raise _fail(f"timed out ({type(exc).__name__})", retryable=True) from None
            except httpx.TransportError as exc:
                raise _fail(f"connection failed ({type(exc).__name__}: {exc})", retryable=True) from None
            status = response.status_code
            if status != 200:
                throttled = status == 429
                if throttled:
                    self.stats.throttled += 1
                hint = ""
                if status in (401, 403):
                    hint = f"; check the API key in ${self.key_env} (option api_key_env)"
                elif status == 404:
                    hint = f"; check the URL {_redact_url(self.url)} and the model name {self.model!r}"
                raise _fail(
                    f"HTTP {status} from {_redact_url(self.url)}{path}: {_preview(response.text)}{hint}",
                    retryable=status in _RETRY_STATUS,
                    throttled=throttled,
                    retry_after=retry_after_seconds(response.headers.get("retry-after")),
                    reason=f"HTTP {status}",
                )
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise _fail(f"unreadable JSON body: {_preview(response.text)}", retryable=True) from None
            if not isinstance(body, dict):
                raise _fail(f"unexpected body (not an object): {_preview(response.text)}", retryable=True)
            ok = True
            return body, (time.perf_counter() - started) * 1000
        finally:
            await limiter.release(epoch, ok=ok, throttled=throttled)

    async def _post(
        self,
        client: httpx.AsyncClient,
        limiter: AimdLimiter,
        path: str,
        payload: dict[str, Any],
        parse: Callable[[dict[str, Any]], T],
    ) -> tuple[T, float, int]:
        """POST with retries; returns (parsed body, latency of the good attempt in ms, attempts).

        ``parse`` raises ``_Retryable`` for a body of the wrong shape. The final failure is raised as
        ``RequestFailed`` with the attempt count in its message.
        """
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self.stats.retries += 1
                    try:
                        body, ms = await self._attempt(client, limiter, path, payload)
                        return parse(body), ms, attempts
                    except RequestFailed as exc:
                        reasons = self.stats.retry_reasons
                        reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                        raise
        except RequestFailed as exc:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            raise RequestFailed(f"{exc}{tries}", retryable=False) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _client(self, limit: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        )

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
                json.dumps([req.messages, req.sampling.__dict__, req.response_format], sort_keys=True)
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
        s = group.request.sampling
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": group.messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "seed": group.request.seed,
        }
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
    def _parse_chat(n: int) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
        def parse(body: dict[str, Any]) -> list[dict[str, Any]]:
            choices = body.get("choices")
            if not isinstance(choices, list) or len(choices) != n:
                got = len(choices) if isinstance(choices, list) else "no"
                raise _fail(
                    f"expected {n} choice(s), got {got}: {_preview(json.dumps(body))}", retryable=True
                )
            ordered = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
            for c in ordered:
                message = c.get("message") if isinstance(c, dict) else None
                if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                    raise _fail(f"a choice has no message content: {_preview(json.dumps(c))}", retryable=True)
            usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
            for c in ordered:
                c["_usage"] = usage
            return ordered

        return parse

    def _rows(
        self, group: _Group, choices: list[dict[str, Any]], ms: float, attempts: int
    ) -> list[Generation]:
        n = len(choices)
        usage = choices[0]["_usage"]
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        total_completion = int(usage.get("completion_tokens") or 0)
        counts: list[int | None] = []
        logprobs: list[float | None] = []
        for c in choices:
            content = (
                (c.get("logprobs") or {}).get("content") if isinstance(c.get("logprobs"), dict) else None
            )
            if isinstance(content, list) and content:
                counts.append(len(content))
                logprobs.append(float(sum(float(t.get("logprob", 0.0)) for t in content)))
            else:
                counts.append(None)
                logprobs.append(None)
        if n == 1:
            counts = [total_completion or counts[0] or 0]
        elif any(c is None for c in counts):  # no per-choice counts: share the total by text length
            lengths = [max(1, len(c["message"]["content"])) for c in choices]
            counts = [round(total_completion * k / sum(lengths)) for k in lengths]
        rows = []
        for c, tokens, lp in zip(choices, counts, logprobs, strict=True):
            tokens = int(tokens or 0)
            reason = c.get("finish_reason")
            rows.append(
                Generation(
                    text=c["message"]["content"].strip(),
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
        limiter = AimdLimiter(self.max_concurrency, self.min_concurrency)
        self.last_limiter = limiter

        async def run(client: httpx.AsyncClient, group: _Group) -> None:
            started = time.perf_counter()
            try:
                choices, ms, attempts = await self._post(
                    client,
                    limiter,
                    "/chat/completions",
                    self._payload(group),
                    self._parse_chat(len(group.rows)),
                )
                rows = self._rows(group, choices, ms, attempts)
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

        async with self._client(self.max_concurrency) as client:
            await asyncio.gather(*(run(client, g) for g in groups))
        self.stats.limit_decreases += limiter.decreases
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, limiter.peak_in_flight)
        return [r if r is not None else Generation.failed("internal error: no result") for r in results]

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """One ``Generation`` per request, in order; failed requests are error rows."""
        if not requests:
            return []
        return _run_sync(lambda: self._generate_async(requests, progress))

    # ------------------------------------------------------------------ score

    def _score_payload(self, messages: Messages, *, continue_final: bool, generation_prompt: bool) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": 0,
            "add_generation_prompt": generation_prompt,
            "continue_final_message": continue_final,
        }

    def _parse_prompt_logprobs(self, body: dict[str, Any]) -> list[float | None]:
        values = body.get("prompt_logprobs")
        if values is None:
            choices = body.get("choices") or [{}]
            values = choices[0].get("prompt_logprobs") if isinstance(choices[0], dict) else None
        if not isinstance(values, list):
            raise RequestFailed(
                f"the endpoint {_redact_url(self.url)} returned no prompt_logprobs; score() needs a server "
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
        self, client: httpx.AsyncClient, limiter: AimdLimiter, messages: Messages, response: str
    ) -> float:
        full = [*messages, {"role": "assistant", "content": response}]

        def usage(body: dict[str, Any]) -> int:
            n = (body.get("usage") or {}).get("prompt_tokens")
            if not isinstance(n, int):
                raise _fail("no usage.prompt_tokens in the body", retryable=True)
            return n

        path = "/chat/completions"
        prompt_n, _, _ = await self._post(
            client,
            limiter,
            path,
            self._score_payload(messages, continue_final=False, generation_prompt=True),
            usage,
        )
        cont_n, _, _ = await self._post(
            client,
            limiter,
            path,
            self._score_payload(full, continue_final=True, generation_prompt=False),
            usage,
        )
        logprobs, _, _ = await self._post(
            client,
            limiter,
            path,
            self._score_payload(full, continue_final=False, generation_prompt=False),
            self._parse_prompt_logprobs,
        )
        # positions [prompt_n, cont_n) are the response; position cont_n is the end-of-turn token
        span = logprobs[prompt_n : cont_n + 1]
        if len(span) != cont_n + 1 - prompt_n or any(v is None for v in span):
            return math.nan
        return float(sum(v for v in span if v is not None))

    async def _score_async(self, items: list[tuple[Messages, str]]) -> list[float]:
        limiter = AimdLimiter(self.max_concurrency, self.min_concurrency)
        async with self._client(self.max_concurrency) as client:
            outcomes = await asyncio.gather(
                *(self._score_one(client, limiter, m, r) for m, r in items), return_exceptions=True
            )
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
        return _run_sync(lambda: self._score_async(items))
