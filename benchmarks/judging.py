"""Judge throughput: an LLM judge through prefmill against the bare engine on the same calls.

Run::

    .venv/bin/python benchmarks/judging.py [--engine transformers:smollm2] [--candidates 16]
                                           [--mode point] [--max-new-tokens 24] [--repeats 3]
                                           [--check] [--smoke]

It builds ``--candidates`` candidates (half as many prompts, two responses each), then, in the same
run and on the same engine object:

* prefmill: ``llm_judge`` -- render the Jinja prompt of every unit, seed it, one batched
  ``engine.generate``, parse every reply tolerantly, build and validate the ``judgments`` rows (the
  repair retry is off, so both sides make exactly the same calls);
* bare: ``engine.generate`` of the very requests prefmill sent (recorded on a first, untimed pass).

Each side is timed ``--repeats`` times, alternating which goes first; the ratio is the median of
prefmill / the median of bare (target <= 1.05: at most 5% overhead). Greedy decoding makes both sides
generate the same tokens. The per-verdict cost of prefmill's own work (everything but the engine) is
also measured on its own, with an engine that answers instantly, to show what the overhead is made of.
Both sides must give the same replies (prefmill's ``raw`` column against the bare generations).
Exit status is 0, or 1 with ``--check`` when the target is missed. ``--smoke`` (4 candidates, 8 new
tokens, one run) checks the replies in seconds without holding the ratio to the target (CI runs it).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

import pyarrow as pa

from prefmill.engines.base import Engine, Generation, GenerationRequest
from prefmill.engines.registry import get_engine
from prefmill.recipe import LLMJudge
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.llm_judge import llm_judge

TARGET = 1.05
QUESTIONS = [
    "What is {a} plus {b}?",
    "Name a city in a country whose name starts with the letter {c}.",
    "Give one tip for writing clear emails (tip number {a}).",
    "Explain in one sentence why the sky looks blue, for a {a}-year-old.",
]


def candidates(n: int) -> pa.Table:
    rows = []
    for i in range(n):
        p = i // 2
        q = QUESTIONS[p % len(QUESTIONS)].format(a=p + 2, b=p + 5, c="ABCDEFGH"[p % 8])
        answer = f"The answer is {p + 7}." if i % 2 == 0 else f"I think it might be {p * 3} or so, not sure."
        rows.append(
            {
                "candidate_id": f"c{i:04d}",
                "prompt_id": f"p{p:04d}",
                "response": answer,
                "messages": [{"role": "user", "content": q}],
                "reference": None,
                "rubric": None,
                "error": None,
            }
        )
    schema = pa.schema(
        [
            ("candidate_id", pa.string()),
            ("prompt_id", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(MESSAGE)),
            ("reference", pa.string()),
            ("rubric", pa.string()),
            ("error", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


class Recorder:
    """Passes calls to an engine and keeps the requests."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.name, self.model = engine, engine.name, engine.model
        # the same structured output as the engine, so the recorded requests carry the same schemas
        self.supports_response_format = getattr(engine, "supports_response_format", False)
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        self.requests += requests
        return self.engine.generate(requests)

    def score(self, items: list) -> list[float]:
        return self.engine.score(items)


class Instant:
    """An engine that answers every request at once with a fixed verdict (prefmill's own cost)."""

    name, model = "instant:judge", "instant"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        return [Generation(self.reply, 8, 100, "stop", -1.0, 0.0) for _ in requests]

    def score(self, items: list) -> list[float]:
        return [0.0] * len(items)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="transformers:smollm2")
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--mode", default="point", choices=["point", "pair", "rubric"])
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    ap.add_argument(
        "--smoke", action="store_true", help="seconds: 4 candidates, 8 new tokens, 1 run; replies, not target"
    )
    args = ap.parse_args()
    own_candidates = 2000
    if args.smoke:
        args.candidates, args.max_new_tokens, args.repeats, args.check = 4, 8, 1, False
        own_candidates = 200

    cands = candidates(args.candidates)
    config = LLMJudge(kind="llm", mode=args.mode, max_new_tokens=args.max_new_tokens, repair=False)
    engine = get_engine(args.engine)
    recorder = Recorder(engine)
    first = llm_judge(config, cands, recorder)  # warm-up, and the requests the bare side replays
    requests = recorder.requests
    times: dict[str, list[float]] = {"prefmill": [], "bare": []}

    replies: dict[str, set[str | None]] = {}

    def run_prefmill() -> None:
        out = llm_judge(config, cands, engine)
        assert out.num_rows == first.num_rows
        replies["prefmill"] = set(out.column("raw").to_pylist())

    def run_bare() -> None:
        replies["bare"] = {g.text for g in engine.generate(requests)}

    sides = {"prefmill": run_prefmill, "bare": run_bare}
    for i in range(args.repeats):
        for side in ["prefmill", "bare"] if i % 2 == 0 else ["bare", "prefmill"]:
            started = time.perf_counter()
            sides[side]()
            times[side].append(time.perf_counter() - started)

    own = Instant(
        '{"score": 7, "rationale": "fine"}' if args.mode == "point" else '{"better": "A", "strength": 2}'
    )
    if args.mode == "rubric":
        own = Instant('{"helpfulness": 7, "harmlessness": 8, "honesty": 6, "conciseness": 5}')
    if replies["prefmill"] != replies["bare"]:  # greedy decoding: the same calls give the same replies
        raise SystemExit("prefmill's judgments hold other replies than the bare engine gave")
    big = candidates(own_candidates)
    started = time.perf_counter()
    rows = llm_judge(config, big, own).num_rows
    own_seconds = time.perf_counter() - started

    p, b = statistics.median(times["prefmill"]), statistics.median(times["bare"])
    ratio = p / b
    verdicts = len(requests)
    ok = ratio <= TARGET
    import torch  # versions for the record

    print(
        f"prefmill judging benchmark: {args.engine}, mode {args.mode}, {args.candidates} candidates "
        f"({verdicts} judge calls, max_new_tokens {args.max_new_tokens}), median of {args.repeats}; "
        f"CPython {platform.python_version()}, torch {torch.__version__}, {datetime.now(UTC):%Y-%m-%d}"
    )
    print()
    print("| side     | median s | calls/s | prefmill/bare | target  | result |")
    print("|----------|----------|---------|---------------|---------|--------|")
    print(f"| bare     | {b:8.2f} | {verdicts / b:7.2f} |             - |       - |        |")
    print(
        f"| prefmill | {p:8.2f} | {verdicts / p:7.2f} | {ratio:13.3f} | <= {TARGET:.2f} | "
        f"{'PASS' if ok else 'FAIL':<6} |"
    )
    print()
    print(
        f"runs: prefmill {[round(t, 2) for t in times['prefmill']]}, "
        f"bare {[round(t, 2) for t in times['bare']]}"
    )
    print(
        f"prefmill's own work (instant engine): {rows} rows from {big.num_rows} candidates in "
        f"{own_seconds:.3f} s = {own_seconds / max(rows, 1) * 1e6:.0f} us per verdict row"
    )
    print("same replies on both sides")
    if args.smoke:
        print("smoke: the ratio at tiny sizes is not held to the target")
    else:
        print("PASS: overhead within target" if ok else "FAIL: overhead above target")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
