"""Prompt KV sharing in the transformers engine: the candidates stage with and without it, same run.

Run::

    .venv/bin/python benchmarks/prefix_sharing.py [--prompts 8] [--k 1,4,8] [--max-new-tokens 32]
        [--context-words 0,150] [--repeats 3] [--smoke]

For each k (samples per prompt) and prompt length (``--context-words`` words of context put before
each question, as in few-shot or document-grounded prompts), it times ``synthesize()`` on the
embedded model with ``share_prefix`` on (the prompt's forward pass once per distinct prompt, its KV
cache copied to the k samples) and off (every sample runs its prompt), alternating which goes first,
and prints off / on: the speed-up. It also checks that both give the same texts (exit status 1 when
not). k=1 is the control: nothing to share, so the ratio should be ~1. ``--smoke`` runs the same
checks in seconds on tiny sizes (CI runs it).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime

import pyarrow as pa

from prefmill.engines.transformers.engine import TransformersEngine
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.synthesis.online import synthesize

TOPICS = ["a cat", "the sea", "a city at night", "rain", "mountains", "a library", "coffee", "winter"]
FILLER = (
    "The following notes describe the style we want: plain words, short sentences, concrete images, "
    "no lists, no titles, and an ending that looks back at the opening line. "
)


def _prompts(n: int, context_words: int) -> pa.Table:
    words = (FILLER * (context_words // len(FILLER.split()) + 1)).split()[:context_words]
    context = " ".join(words)
    texts = [
        f"{context}\n\nWrite two sentences about {TOPICS[i % len(TOPICS)]} (variant {i}).".lstrip()
        for i in range(n)
    ]
    return pa.table(
        {
            "prompt_id": [f"p{i:04d}" for i in range(n)],
            "messages": pa.array([[{"role": "user", "content": t}] for t in texts], pa.list_(MESSAGE)),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--k", default="1,4,8")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--context-words", default="0,150")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2 prompts, k=1,2, 4 new tokens, 0 or 20 words, 1 run"
    )
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.k, args.max_new_tokens, args.context_words, args.repeats = 2, "1,2", 4, "0,20", 1
    print(
        f"prefmill prefix-sharing benchmark: {args.prompts} prompts, max_new_tokens={args.max_new_tokens}, "
        f"median of {args.repeats}; CPython {platform.python_version()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d}",
        flush=True,
    )
    engine = TransformersEngine("smollm2")
    differ = 0
    for words in (int(w) for w in args.context_words.split(",")):
        prompts = _prompts(args.prompts, words)
        prompt_tokens = engine._prompt_ids(prompts.column("messages").to_pylist()[0])
        for k in (int(v) for v in args.k.split(",")):
            kw = {
                "k": k,
                "temperatures": [0.8],
                "top_p": 0.95,
                "max_new_tokens": args.max_new_tokens,
                "seed": 0,
            }
            times: dict[bool, list[float]] = {True: [], False: []}
            texts: dict[bool, list[str]] = {}
            synthesize(prompts, engine, **kw)  # warm-up: the allocator sees this shape once first
            for r in range(args.repeats):
                for share in (True, False) if r % 2 == 0 else (False, True):
                    engine.share_prefix = share
                    started = time.perf_counter()
                    table = synthesize(prompts, engine, **kw)
                    times[share].append(time.perf_counter() - started)
                    texts[share] = table.column("response").to_pylist()
            engine.share_prefix = True
            on, off = statistics.median(times[True]), statistics.median(times[False])
            same = sum(a == b for a, b in zip(texts[True], texts[False], strict=True))
            differ += len(texts[True]) - same
            print(
                f"prompt {len(prompt_tokens)} tokens, k={k}: shared {on:.2f}s, unshared {off:.2f}s, "
                f"speed-up {off / on:.3f}; same text {same}/{len(texts[True])}",
                flush=True,
            )
    if differ:
        print(f"FAIL: {differ} texts differ with and without prefix sharing")
        return 1
    print("same texts with and without prefix sharing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
