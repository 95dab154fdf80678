"""The HTTP layer of the openai engine: one POST with retries, backoff and the concurrency bound.

``httpx`` and ``tenacity`` rather than the ``openai`` client's own retries: those retry inside the
client, so a 429 never reaches the concurrency controller (``limiter.AimdLimiter``), and they give
no hook for per-row attempt counts or for treating a truncated body as retryable.

Each request is retried with exponential backoff and full jitter on 429, 408, 409, 5xx, timeouts,
dropped connections and unreadable bodies, honouring ``Retry-After`` (up to ``max_backoff``); 400,
401, 403, 404 fail for good.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from prefmill.engines.openai.limiter import AimdLimiter

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


class Retryable(RequestFailed):
    """The subclass tenacity retries on (a permanent failure is raised as plain ``RequestFailed``)."""


def fail(message: str, *, retryable: bool, **kw: Any) -> RequestFailed:
    """The exception for a failed attempt: ``Retryable`` when another attempt may succeed."""
    return (Retryable if retryable else RequestFailed)(message, retryable=retryable, **kw)


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


def redact_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe for names, errors and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """``url`` without its userinfo, and that userinfo as HTTP basic auth (None without one), so the
    credentials travel in a header and never in a URL that httpx logs or an error shows."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))


def preview(text: str) -> str:
    """The start of a response body, on one line."""
    text = text.replace("\n", " ")
    return text if len(text) <= _BODY_PREVIEW else text[:_BODY_PREVIEW] + "..."


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


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


class Transport:
    """POSTs JSON to one endpoint with retries; counts every attempt in ``stats``.

    ``model`` only names the model in a 404's hint; ``key`` (None: none sent) is sent as a bearer
    token and never shown.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str,
        key: str | None,
        key_env: str,
        timeout: float,
        connect_timeout: float,
        max_retries: int,
        backoff: float,
        max_backoff: float,
        stats: EngineStats,
    ) -> None:
        self.url, self._auth = split_credentials(url.rstrip("/"))
        self.model = model
        self.key_env = key_env
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = httpx.Timeout(float(timeout), connect=float(connect_timeout))
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.stats = stats

    def __repr__(self) -> str:  # never shows the key
        return f"Transport({redact_url(self.url)!r}, max_retries={self.max_retries})"

    def client(self, limit: int) -> httpx.AsyncClient:
        """An HTTP client with up to ``limit`` connections."""
        return httpx.AsyncClient(
            auth=self._auth,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        )

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: full-jitter exponential backoff, or the server's word."""
        base = wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)(state)
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:  # the server said when; add a little jitter so clients spread out
            return min(max(after, 0.0), max(self.max_backoff, 0.0)) + base * 0.1
        return base

    async def attempt(
        self, client: httpx.AsyncClient, limiter: AimdLimiter, path: str, payload: dict[str, Any]
    ) -> tuple[dict[str, Any], float]:
        """One attempt inside a limiter slot; returns (body, latency in ms) or raises ``RequestFailed``."""
        epoch = await limiter.acquire()
        ok = throttled = False
        started = time.perf_counter()
        self.stats.attempts += 1
        try:
            try:
                response = await client.post(self.url + path, json=payload, headers=self._headers)
            except httpx.TimeoutException as exc:
                raise fail(f"timed out ({type(exc).__name__})", retryable=True) from None
            except httpx.TransportError as exc:
                raise fail(f"connection failed ({type(exc).__name__}: {exc})", retryable=True) from None
            status = response.status_code
            if status != 200:
                throttled = status == 429
                if throttled:
                    self.stats.throttled += 1
                hint = ""
                if status in (401, 403):
                    hint = f"; check the API key in ${self.key_env} (option api_key_env)"
                elif status == 404:
                    hint = f"; check the URL {redact_url(self.url)} and the model name {self.model!r}"
                raise fail(
                    f"HTTP {status} from {redact_url(self.url)}{path}: {preview(response.text)}{hint}",
                    retryable=status in _RETRY_STATUS,
                    throttled=throttled,
                    retry_after=retry_after_seconds(response.headers.get("retry-after")),
                    reason=f"HTTP {status}",
                )
            try:
                body = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise fail(f"unreadable JSON body: {preview(response.text)}", retryable=True) from None
            if not isinstance(body, dict):
                raise fail(f"unexpected body (not an object): {preview(response.text)}", retryable=True)
            ok = True
            return body, (time.perf_counter() - started) * 1000
        finally:
            await limiter.release(epoch, ok=ok, throttled=throttled)

    async def post(
        self,
        client: httpx.AsyncClient,
        limiter: AimdLimiter,
        path: str,
        payload: dict[str, Any],
        parse: Callable[[dict[str, Any]], T],
    ) -> tuple[T, float, int]:
        """POST with retries; returns (parsed body, latency of the good attempt in ms, attempts).

        ``parse`` raises ``Retryable`` for a body of the wrong shape. The final failure is raised as
        ``RequestFailed`` with the attempt count in its message.
        """
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self.wait,
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        self.stats.retries += 1
                    try:
                        body, ms = await self.attempt(client, limiter, path, payload)
                        return parse(body), ms, attempts
                    except RequestFailed as exc:
                        reasons = self.stats.retry_reasons
                        reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                        raise
        except RequestFailed as exc:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            raise RequestFailed(f"{exc}{tries}", retryable=False) from None
        raise AssertionError("unreachable")  # pragma: no cover
