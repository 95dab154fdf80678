"""Keeping a fast engine fed with small shards: a build with ``shard_size: 8`` against what a user
would write by hand, through an OpenAI-compatible server and through the in-process engine.

Run::

    .venv/bin/python benchmarks/saturation.py [--prompts 2000] [--k 4] [--shard-size 8]
        [--concurrency 256] [--delay 0.2] [--local-prompts 64] [--repeat 1]
        [--skip-local | --skip-openai] [--smoke]

1. openai: a loopback OpenAI-compatible server (``tests/unit/delay_server.py``, in a process of
   its own) answers every request after ``--delay`` seconds with a few tokens and counts the
   requests it serves at once. A build of ``--prompts`` prompts x ``--k`` samples with
   ``shard_size: --shard-size`` and ``max_concurrency=--concurrency`` (synthesis only) runs
   against it, then a plain ``openai.AsyncOpenAI`` loop with ``asyncio.Semaphore(--concurrency)``
   sends the same requests (same messages, same seeds). Printed: the server's mean requests in
   flight during each, and build / plain wall time (the synthesis stage's time; the build's fixed
   start-up, Prefect's API, is left out). Checked: the plain loop's texts equal the build's, and a
   ``shard_size: --prompts`` build (one shard) gives the same rows.
2. transformers: the embedded model, ``--local-prompts`` prompts x k, ``shard_size: 8`` vs one shard
   of all prompts: wall ratio of the synthesis stage (best of ``--repeat`` alternated runs), and
   the same rows (texts, tokens, seeds: the two batch differently, so log-probs may differ in the
   last digits).

Exit status 1 when rows differ. ``--smoke`` runs the same checks at tiny sizes in seconds (CI).
Goals (issue 19): mean in flight >= 200, build <= 1.2x the plain loop, transformers <= 1.1x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from prefmill.flows import run_build
from prefmill.recipe import Recipe
from prefmill.storage import Store

SERVER = Path(__file__).resolve().parent.parent / "tests" / "unit" / "delay_server.py"
COLUMNS = ["candidate_id", "prompt_id", "sample_index", "response", "error", "sampling"]


def _recipe(engine: str, prompts: int, k: int, shard_size: int, batch_size: int = 64) -> Recipe:
    return Recipe.model_validate(
        {
            "dataset": "sat",
            "seed": 1,
            "shard_size": shard_size,
            "prompts": {"sources": [{"kind": "arithmetic", "n": prompts, "seed": 3}]},
            "synthesis": {"engine": engine, "k": k, "max_new_tokens": 8, "batch_size": batch_size},
        }
    )


def _build(recipe: Recipe, root: str) -> tuple[float, Any, list[dict[str, Any]]]:
    """(synthesis seconds, its result, its rows by candidate id)."""
    summary = run_build(recipe, root, stop_after="synthesis")
    cands = next(t for t in summary.tables if t.table == "candidates")
    store = Store(root)
    rows = store.read_arrow(store.resolve_version("sat", "candidates"), COLUMNS).sort_by("candidate_id")
    return cands.seconds, cands, rows.to_pylist()


def _plain_requests(root: str) -> list[tuple[list[dict[str, str]], dict[str, Any], str]]:
    """The build's requests (messages, sampling) and texts, to send them again by hand."""
    store = Store(root)
    prompts = store.read_arrow(store.resolve_version("sat", "prompts"), ["prompt_id", "messages"])
    messages = dict(
        zip(prompts.column("prompt_id").to_pylist(), prompts.column("messages").to_pylist(), strict=True)
    )
    cands = store.read_arrow(
        store.resolve_version("sat", "candidates"), ["prompt_id", "sampling", "response"]
    )
    return [(messages[r["prompt_id"]], json.loads(r["sampling"]), r["response"]) for r in cands.to_pylist()]


async def _plain_loop(url: str, requests: list[Any], concurrency: int) -> list[str]:
    """What a user writes by hand: AsyncOpenAI, a semaphore, gather."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=url,
        api_key="none",
        max_retries=0,
        http_client=httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=httpx.Timeout(120.0, connect=60.0),  # lax enough for a loaded machine
        ),
    )
    sem = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict[str, str]], s: dict[str, Any]) -> str:
        async with sem:
            r = await client.chat.completions.create(
                model="m",
                messages=messages,  # type: ignore[arg-type]
                temperature=s["temperature"],
                top_p=s["top_p"],
                max_tokens=s["max_new_tokens"],
                seed=s["seed"],
            )
            return (r.choices[0].message.content or "").strip()

    return await asyncio.gather(*(one(m, s) for m, s, _ in requests))


def _server(delay: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), str(delay)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _stats(url: str, reset: bool = False) -> dict[str, Any]:
    return httpx.request("POST" if reset else "GET", f"{url}/{'reset' if reset else 'stats'}").json()


def openai_part(args: argparse.Namespace, tmp: str) -> bool:
    proc, url = _server(args.delay)
    try:
        engine = f"openai:m@{url}?max_concurrency={args.concurrency}"
        n = args.prompts * args.k
        _stats(url, reset=True)
        t_build, cands, rows = _build(_recipe(engine, args.prompts, args.k, args.shard_size), f"{tmp}/small")
        build_stats = _stats(url)
        print(f"  build: {t_build:.2f}s, server {build_stats}", flush=True)
        requests = _plain_requests(f"{tmp}/small")
        _stats(url, reset=True)
        started = time.perf_counter()
        texts = asyncio.run(_plain_loop(url, requests, args.concurrency))
        t_plain = time.perf_counter() - started
        plain_stats = _stats(url)
        _, _, one_shard = _build(_recipe(engine, args.prompts, args.k, args.prompts), f"{tmp}/big")
    finally:
        proc.kill()
        proc.wait()
    same_plain = texts == [r for _, _, r in requests]
    same_rows = rows == one_shard
    window = cands.in_flight[2] if cands.in_flight else 1
    print(
        f"openai: {args.prompts} prompts x k={args.k} = {n} requests, shard_size {args.shard_size} "
        f"({window} shards in flight), max_concurrency {args.concurrency}, delay {args.delay * 1000:.0f} ms"
    )
    print(
        f"  build synthesis {t_build:.2f}s, server mean in flight {build_stats['mean_in_flight']:.1f} "
        f"(peak {build_stats['peak']}); plain AsyncOpenAI+Semaphore {t_plain:.2f}s, mean in flight "
        f"{plain_stats['mean_in_flight']:.1f} (peak {plain_stats['peak']})"
    )
    print(
        f"  ratio build/plain {t_build / t_plain:.2f}x (goal <= 1.2); mean in flight "
        f"{build_stats['mean_in_flight']:.0f} (goal >= 200 at 256); plain texts equal: {same_plain}; "
        f"rows equal to one shard of {args.prompts}: {same_rows}",
        flush=True,
    )
    return same_plain and same_rows


def local_part(args: argparse.Namespace, tmp: str) -> bool:
    engine = "transformers:smollm2"
    n = args.local_prompts
    _build(_recipe(engine, 2, 1, 8), f"{tmp}/warm")  # load the model once, outside the timings
    smalls: list[float] = []
    bigs: list[float] = []
    same = True
    for r in range(args.repeat):  # alternated, so that a swing of the machine's load hits both
        t_small, cands, small = _build(_recipe(engine, n, args.k, 8), f"{tmp}/local-small-{r}")
        t_big, _, big = _build(_recipe(engine, n, args.k, n), f"{tmp}/local-big-{r}")
        smalls.append(t_small)
        bigs.append(t_big)
        same = same and small == big
    group = cands.in_flight[2] if cands.in_flight else 1
    t_small, t_big = min(smalls), min(bigs)
    print(
        f"transformers: {n} prompts x k={args.k}, batch_size 64: shard_size 8 (groups of {group} shards) "
        f"{t_small:.2f}s vs one shard {t_big:.2f}s (best of {args.repeat}): ratio {t_small / t_big:.2f}x "
        f"(goal <= 1.1); rows equal: {same}",
        flush=True,
    )
    return same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--shard-size", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--local-prompts", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=1, help="transformers part: alternated runs, best of")
    ap.add_argument("--skip-local", action="store_true", help="only the openai part")
    ap.add_argument("--skip-openai", action="store_true", help="only the transformers part")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.k, args.delay, args.local_prompts, args.concurrency = 64, 2, 0.05, 16, 64
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"prefmill saturation benchmark: CPython {platform.python_version()}, {os.cpu_count()} cores, "
        f"load {load:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        ok = True if args.skip_openai else openai_part(args, tmp)
        if not args.skip_local:
            ok = local_part(args, tmp) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
