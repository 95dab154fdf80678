"""The HTTP layer of the openai engine: the official ``openai`` client (``AsyncOpenAI``), one
attempt at a time inside the concurrency bound, with prefmill's retries around it.

The client sends every request: its base URL, its timeouts (``timeout`` per attempt,
``connect_timeout``), its headers (``User-Agent: AsyncOpenAI/Python x.y``, the bearer key), its typed
``ChatCompletion`` and its typed errors (``APIStatusError`` with the response and its headers,
``APITimeoutError``, ``APIConnectionError``). Requests go through ``with_raw_response`` so a body
that does not parse can be shown, and ``Retry-After`` / ``retry-after-ms`` are read from the
response headers.

The client's own retries are off (``max_retries=0``) and prefmill retries instead (``Transport.post``,
a short loop around ``attempt``). The client retries inside one call, so a 429 would never reach
the concurrency controller (``limiter.AimdLimiter``, which must see each attempt to halve the
bound), a row could not record how many attempts it took, its backoff ignores the ``backoff`` /
``max_backoff`` options, and a 200 whose body is truncated, not JSON or without the choices asked
for is not retried by it at all.

Each request is retried with exponential backoff and full jitter on 429, 408, 409, 5xx, timeouts,
dropped connections and unreadable bodies, honouring ``Retry-After`` (up to ``max_backoff``); 400,
401, 403, 404 fail for good. The API key and URL credentials never appear in a message.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx2
import openai
from openai.types.chat import ChatCompletion

from prefmill.engines.openai.limiter import AimdLimiter

if TYPE_CHECKING:
    from tenacity import RetryCallState

_RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
_BODY_PREVIEW = 200
#: Sent instead of a key when there is none (a local server): the client wants one, the request
#: then omits the Authorization header.
_NO_KEY = "no-key"
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
    """A failure another attempt may cure (a permanent one is raised as plain ``RequestFailed``)."""


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


def retry_after(headers: Any) -> float | None:
    """The server's wait from response headers: ``retry-after-ms`` (OpenAI's), else ``Retry-After``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    return retry_after_seconds(headers.get("retry-after"))


def redact_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe for names, errors and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def split_credentials(url: str) -> tuple[str, httpx2.BasicAuth | None]:
    """``url`` without its userinfo, and that userinfo as HTTP basic auth (None without one), so the
    credentials travel in a header and never in a URL that the client logs or an error shows."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, httpx2.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))


def preview(text: str) -> str:
    """The start of a response body, on one line."""
    text = text.replace("\n", " ")
    return text if len(text) <= _BODY_PREVIEW else text[:_BODY_PREVIEW] + "..."


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
    """Sends chat completions to one endpoint through ``AsyncOpenAI`` with retries; counts every
    attempt in ``stats``.

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
        self._key = key or None
        # no key: the request omits the client's Authorization header (basic auth from the URL, if
        # any, is then the only one; with a key, basic auth replaces the bearer as before)
        self._headers: dict[str, Any] = {} if self._key else {"Authorization": openai.Omit()}
        self.timeout = httpx2.Timeout(float(timeout), connect=float(connect_timeout))
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.stats = stats

    def __repr__(self) -> str:  # never shows the key
        return f"Transport({redact_url(self.url)!r}, max_retries={self.max_retries})"

    def client(self, limit: int) -> openai.AsyncOpenAI:
        """An ``AsyncOpenAI`` client with up to ``limit`` connections and no retries of its own."""
        http = openai.DefaultAsyncHttpxClient(
            auth=self._auth,
            timeout=self.timeout,
            limits=httpx2.Limits(max_connections=limit, max_keepalive_connections=limit),
        )
        return openai.AsyncOpenAI(
            base_url=self.url,
            api_key=self._key or _NO_KEY,
            timeout=self.timeout,
            max_retries=0,  # prefmill retries (see the module docstring)
            http_client=http,
        )

    def delay(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first): full-jitter
        exponential backoff, uniform in [0, min(max_backoff, backoff * 2^(attempt-1))], or the
        server's ``Retry-After`` (capped at ``max_backoff``) plus a tenth of that jitter."""
        base = random.uniform(0.0, min(self.max_backoff, self.backoff * 2.0 ** min(attempt - 1, 60)))
        after = getattr(exc, "retry_after", None)
        if after is not None:  # the server said when; add a little jitter so clients spread out
            return min(max(after, 0.0), max(self.max_backoff, 0.0)) + base * 0.1
        return base

    def wait(self, state: RetryCallState) -> float:
        """``delay`` for a tenacity retry state (its attempt number and outcome)."""
        return self.delay(state.attempt_number, state.outcome.exception() if state.outcome else None)

    def _status_error(self, exc: openai.APIStatusError) -> RequestFailed:
        status = exc.status_code
        throttled = status == 429
        if throttled:
            self.stats.throttled += 1
        hint = ""
        if status in (401, 403):
            hint = f"; check the API key in ${self.key_env} (option api_key_env)"
        elif status == 404:
            hint = f"; check the URL {redact_url(self.url)} and the model name {self.model!r}"
        try:
            body = exc.response.text
        except Exception:  # a body that cannot be decoded
            body = ""
        return fail(
            f"HTTP {status} from {redact_url(self.url)}/chat/completions: {preview(body)}{hint}",
            retryable=status in _RETRY_STATUS,
            throttled=throttled,
            retry_after=retry_after(exc.response.headers),
            reason=f"HTTP {status}",
        )

    async def attempt(
        self, client: openai.AsyncOpenAI, limiter: AimdLimiter, params: dict[str, Any]
    ) -> tuple[ChatCompletion, float]:
        """One ``chat.completions.create(**params)`` inside a limiter slot; returns (the typed
        completion, latency in ms) or raises ``RequestFailed``."""
        epoch = await limiter.acquire()
        ok = throttled = False
        started = time.perf_counter()
        self.stats.attempts += 1
        try:
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    **params, extra_headers=self._headers
                )
            except openai.APITimeoutError as exc:
                cause = exc.__cause__ or exc
                raise fail(f"timed out ({type(cause).__name__})", retryable=True) from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise fail(f"connection failed ({type(cause).__name__}: {cause})", retryable=True) from None
            except openai.APIStatusError as exc:
                failed = self._status_error(exc)
                throttled = failed.throttled
                raise failed from None
            try:
                completion = raw.parse()
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise fail(
                    f"unreadable JSON body: {preview(raw.http_response.text)}", retryable=True
                ) from None
            if not isinstance(completion, ChatCompletion):  # a body that is not JSON comes back as text
                raise fail(f"unreadable JSON body: {preview(str(completion))}", retryable=True)
            ok = True
            return completion, (time.perf_counter() - started) * 1000
        finally:
            await limiter.release(epoch, ok=ok, throttled=throttled)

    async def post(
        self,
        client: openai.AsyncOpenAI,
        limiter: AimdLimiter,
        params: dict[str, Any],
        parse: Callable[[ChatCompletion], T],
    ) -> tuple[T, float, int]:
        """Create a chat completion with retries; returns (parsed completion, latency of the good
        attempt in ms, attempts).

        ``params`` are ``chat.completions.create``'s keyword arguments (fields the client does not
        know go in ``extra_body``). ``parse`` raises ``Retryable`` for a completion of the wrong
        shape. The final failure is raised as ``RequestFailed`` with the attempt count in its message.
        """
        attempts = 0
        while True:
            attempts += 1
            if attempts > 1:
                self.stats.retries += 1
            try:
                completion, ms = await self.attempt(client, limiter, params)
                return parse(completion), ms, attempts
            except RequestFailed as exc:
                reasons = self.stats.retry_reasons
                reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
                if not isinstance(exc, Retryable) or attempts > self.max_retries:
                    tries = f" after {attempts} attempts" if attempts > 1 else ""
                    raise RequestFailed(f"{exc}{tries}", retryable=False) from None
                wait = self.delay(attempts, exc)
            await asyncio.sleep(wait)
