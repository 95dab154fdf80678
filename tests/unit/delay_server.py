"""An OpenAI-compatible chat server on 127.0.0.1 that answers every request after a fixed delay and
counts the requests it is serving at once (time-weighted mean and peak): a stand-in for a fast
engine behind HTTP, for the shard-window tests and ``benchmarks/saturation.py``.

It is one asyncio loop in a thread (hundreds of requests in flight cost nothing). The answer is a
few words that depend only on the request's last user message and seed, so two builds get the same
rows. A last user message containing ``FAIL`` gets a 400 (an error row, not retried).
``GET .../stats`` returns the counts; ``POST .../reset`` forgets them. ``python delay_server.py
DELAY`` serves until killed and prints its URL (a server in a process of its own).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from typing import Any

WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta")


def answer_text(message: str, seed: int | None) -> str:
    digest = hashlib.sha256(f"{message}|{seed}".encode()).digest()
    return " ".join(WORDS[b % len(WORDS)] for b in digest[:4])


class DelayServer:
    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.requests = 0
        self.failed = 0
        self.in_flight = 0
        self.peak = 0
        self._area = 0.0
        self._since = time.perf_counter()
        self._first: float | None = None
        self._last = 0.0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> DelayServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=4096)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def _count(self, delta: int) -> None:
        now = time.perf_counter()
        self._area += self.in_flight * (now - self._since)
        self._since = now
        self.in_flight += delta
        self.peak = max(self.peak, self.in_flight)
        if self._first is None:
            self._first = now
        self._last = now

    def reset(self) -> None:
        """Forget the counts so far (between the two sides of a benchmark)."""
        self.requests = self.failed = self.peak = 0
        self._area, self._since, self._first, self._last = 0.0, time.perf_counter(), None, 0.0

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "peak": self.peak, "mean_in_flight": self.mean_in_flight}

    @property
    def mean_in_flight(self) -> float:
        """Requests in flight on average between the first request and the last answer."""
        if self._first is None or self._last <= self._first:
            return 0.0
        return self._area / (self._last - self._first)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length)) if length else {}
                target = head.split(b" ", 2)[1]
                if target.endswith(b"/stats"):  # GET: the counts so far (benchmarks: server in a subprocess)
                    status, payload = 200, self.stats()
                elif target.endswith(b"/reset"):
                    self.reset()
                    status, payload = 200, {}
                else:
                    status, payload = await self._answer(body)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._count(+1)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self._count(-1)
        self.requests += 1
        users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
        message = users[-1] if users else ""
        if "FAIL" in message:
            self.failed += 1
            return 400, {"error": {"message": "this request always fails"}}
        text = answer_text(message, body.get("seed"))
        n = int(body.get("n") or 1)
        choices = []
        for i in range(n):
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
            if body.get("logprobs"):
                choice["logprobs"] = {"content": [{"token": w, "logprob": -0.5} for w in text.split()]}
            choices.append(choice)
        usage = {"prompt_tokens": 10, "completion_tokens": 4 * n, "total_tokens": 10 + 4 * n}
        return 200, {"id": "x", "object": "chat.completion", "choices": choices, "usage": usage}


if __name__ == "__main__":
    import sys

    with DelayServer(float(sys.argv[1]) if len(sys.argv) > 1 else 0.2) as running:
        print(running.url, flush=True)
        threading.Event().wait()
