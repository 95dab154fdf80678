"""A small OpenAI-compatible HTTP server on 127.0.0.1 that injects faults, for the openai engine tests.

The last user message says what to do; the counter is per (message, seed), so each sample of a
prompt fails on its own schedule:

- ``ok:TEXT``             answer ``echo TEXT``
- ``429:N:TEXT``          N times 429 with ``Retry-After: <retry_after>``, then answer
- ``500:N:TEXT``          N times 500, then answer
- ``hang:N:TEXT``         N times sleep ``hang_seconds`` before answering (the client times out)
- ``garbage:N:TEXT``      N times a 200 with a non-JSON body
- ``truncated:N:TEXT``    N times a 200 with JSON cut in the middle
- ``empty:N:TEXT``        N times a 200 with ``{}`` (no choices)
- ``dead:TEXT``           always 500
- ``bad:TEXT``            always 400 (not retryable)

A request with ``continue_final_message`` gets `` then echo TEXT`` (a continuation, leading space).

With ``capacity`` set, a request arriving while ``capacity`` others are being served gets a 429
(an overloaded server); each answer then takes ``service_seconds``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter, defaultdict
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FaultServer:
    def __init__(
        self,
        *,
        capacity: int | None = None,
        service_seconds: float = 0.0,
        retry_after: str = "0",
        hang_seconds: float = 3.0,
    ) -> None:
        self.capacity = capacity
        self.service_seconds = service_seconds
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.counts: Counter[str] = Counter()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.bodies: list[dict[str, Any]] = []
        # each request's headers, looked up without regard to case (as HTTP names them): the openai
        # client sends ``authorization``, basic auth ``Authorization``
        self.headers: list[Message] = []
        self.status_counts: Counter[int] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # a short poll: shutdown() waits for the loop to notice, 0.5 s by default, at every test's end
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ behaviour

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str, **headers: str
    ) -> None:
        with self.lock:
            self.status_counts[status] += 1
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(payload)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(payload)

    def _json(self, h: BaseHTTPRequestHandler, status: int, obj: Any, **headers: str) -> None:
        self._send(h, status, json.dumps(obj).encode(), "application/json", **headers)

    def answer(self, body: dict[str, Any], text: str) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"]) + 3
        choices = []
        for i in range(n):
            content = f"echo {text} #{i}" if n > 1 else f"echo {text}"
            if body.get("continue_final_message"):  # continue the final assistant message
                content = f" then {content}"
            words = content.split()
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [{"token": w, "logprob": -0.5} for w in words]}
            choices.append(choice)
        completion = sum(len(c["message"]["content"].split()) for c in choices)
        return {
            "id": "x",
            "object": "chat.completion",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)
            self.headers.append(h.headers)
            if self.capacity is not None and self.in_flight >= self.capacity:
                overloaded = True
            else:
                overloaded = False
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if overloaded:
            self._json(h, 429, {"error": "overloaded"}, **{"retry-after": self.retry_after})
            return
        try:
            self._handle(h, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        message = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        key = f"{message}|{body.get('seed')}"
        with self.lock:
            self.counts[key] += 1
            self.times[key].append(time.monotonic())
            seen = self.counts[key]
        if self.service_seconds:
            time.sleep(self.service_seconds)
        kind, _, rest = message.partition(":")
        if kind in ("ok", "dead", "bad"):
            times, text = 0, rest
        else:
            n, _, text = rest.partition(":")
            times = int(n)
        failing = kind == "dead" or kind == "bad" or seen <= times
        if kind == "ok" or not failing:
            self._json(h, 200, self.answer(body, text))
        elif kind == "429":
            self._json(h, 429, {"error": "slow down"}, **{"retry-after": self.retry_after})
        elif kind in ("500", "dead"):
            self._json(h, 500, {"error": "internal"})
        elif kind == "bad":
            self._json(h, 400, {"error": {"message": "bad request: unknown field"}})
        elif kind == "hang":
            time.sleep(self.hang_seconds)
            self._json(h, 200, self.answer(body, text))
        elif kind == "garbage":
            self._send(h, 200, b"<html>502 bad gateway</html>", "text/html")
        elif kind == "truncated":
            whole = json.dumps(self.answer(body, text)).encode()
            self._send(h, 200, whole[: len(whole) // 2], "application/json")
        elif kind == "empty":
            self._json(h, 200, {})
        else:
            self._json(h, 500, {"error": f"unknown test instruction {message!r}"})

    def attempts(self, message: str, seed: int | None = None) -> int:
        return sum(
            v
            for k, v in self.counts.items()
            if k.startswith(f"{message}|") and (seed is None or k == f"{message}|{seed}")
        )
