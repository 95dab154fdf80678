"""Rollout throughput: prefmill's `rollout` judge vs the bare engine on the same continuations.

Run::

    .venv/bin/python benchmarks/rollout_throughput.py [--solutions 8] [--steps 4,6] [--n 4]
        [--engine transformers:smollm2 | oracle] [--max-new-tokens 48] [--repeat 3] [--smoke]

Solutions are the generated multi-step arithmetic chains of ``benchmarks/step_labels.py`` (one
injected error each, a quarter left correct). prefmill: the `rollout` judge's work (segment the
responses, roll out every step prefix but the last ``n`` times through the engine, verify, write the
judgments rows). Bare: what a user would write with the engine alone -- split each response at line
breaks, build the same continuation requests (same prefixes, sampling and seeds), one
``engine.generate`` call, check each prefix + continuation with the same final-answer check. Both
must give the same accepted count for every step (exit status 1 if not); the ratio printed is
prefmill / bare wall time (best of ``--repeat``); the goal is <= 1.05. ``--smoke`` runs the scripted
oracle policy of step_labels.py on a few solutions in seconds (the ratio then is prefmill's own
overhead over a free engine).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from typing import Any

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.ids import seed_for
from prefmill.tasks.evaluation.extract import extract_final_number, numbers_equal
from prefmill.tasks.evaluation.judges.rollout import RolloutJudge
from prefmill.tasks.evaluation.rollouts import monte_carlo, solutions, step_judgments
from prefmill.tasks.steps.config import StepsConfig
from step_labels import Oracle, _dataset


def prefmill_rollouts(config: RolloutJudge, engine: Any, cands: Any) -> dict[tuple[str, int], int]:
    """The rollout judge's work (its ``run`` with the engine given); accepted count per step."""
    sols = solutions(config, cands)
    monte_carlo(config, engine, sols)
    rows = step_judgments(config, sols, soft=True).to_pylist()
    last = {s.candidate_id: len(s.steps) - 1 for s in sols}
    return {
        (r["candidate_id"], r["unit_index"]): round(r["score"] * config.n)
        for r in rows
        if r["unit_index"] < last[r["candidate_id"]]
    }


def bare_rollouts(config: RolloutJudge, engine: Any, cands: Any) -> dict[tuple[str, int], int]:
    """The same continuations with the engine alone."""
    sampling = SamplingParams(config.temperature, config.top_p, config.max_new_tokens)
    todo, requests = [], []
    for r in cands.to_pylist():
        lines = r["response"].split("\n")
        end = 0
        for i, line in enumerate(lines[:-1]):
            end += len(line) + (1 if i else 0)
            prefix = r["response"][:end]
            todo.append((r["candidate_id"], i, prefix, r["reference"]))
            for j in range(config.n):
                seed = seed_for(config.seed, config.judge_name, r["candidate_id"], i, j)
                requests.append(GenerationRequest(r["messages"], sampling, seed, assistant_prefix=prefix))
    gens = engine.generate(requests)
    out = {}
    for k, (cid, i, prefix, reference) in enumerate(todo):
        batch = gens[k * config.n : (k + 1) * config.n]
        out[(cid, i)] = sum(
            g.text is not None and numbers_equal(extract_final_number(prefix + g.text), reference)
            for g in batch
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=int, default=8)
    parser.add_argument("--steps", default="4,6", help="steps per solution (the final answer line included)")
    parser.add_argument("--n", type=int, default=4, help="continuations per step prefix")
    parser.add_argument("--engine", default="transformers:smollm2", help="an engine spec, or `oracle`")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="seconds: the oracle on 8 solutions")
    args = parser.parse_args()
    if args.smoke:
        args.engine, args.solutions, args.repeat = "oracle", 8, 5
    cands, _ = _dataset(args.solutions, [int(s) for s in args.steps.split(",")], args.seed)
    config = RolloutJudge(
        kind="rollout", n=args.n, max_new_tokens=args.max_new_tokens, verifier="arithmetic",
        segmenter=StepsConfig(segmenter="lines"), seed=args.seed, name="bench",
    )  # fmt: skip
    if args.engine == "oracle":
        engine: Any = Oracle(0.0)
    else:
        from prefmill.engines.registry import get_engine

        engine = get_engine(args.engine)
        engine.generate(bare_requests_warmup(cands))  # load the weights before timing
    print(
        f"rollout_throughput: {args.solutions} solutions of {args.steps} steps, n={args.n}, "
        f"engine {args.engine}"
    )
    print(f"  machine: {platform.machine()} {os.cpu_count()} cpus; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    times: dict[str, list[float]] = {"bare": [], "prefmill": []}
    results: dict[str, dict[tuple[str, int], int]] = {}
    for _ in range(args.repeat):
        for label, fn in (("bare", bare_rollouts), ("prefmill", prefmill_rollouts)):
            started = time.perf_counter()
            results[label] = fn(config, engine, cands)
            times[label].append(time.perf_counter() - started)
    rollouts = len(results["bare"]) * args.n
    for label, ts in times.items():
        print(
            f"  {label:9s} best {min(ts):8.3f} s for {rollouts} rollouts "
            f"({rollouts / min(ts):9.1f} rollouts/s)"
        )
    ratio = min(times["prefmill"]) / min(times["bare"])
    print(f"  prefmill / bare wall time: {ratio:.3f} (goal <= 1.05)")
    if results["bare"] != results["prefmill"]:
        print("FAIL: prefmill and the bare engine disagree on accepted continuations")
        return 1
    print(f"  same accepted counts on all {len(results['bare'])} step prefixes")
    return 0


def bare_requests_warmup(cands: Any) -> list[GenerationRequest]:
    first = cands.to_pylist()[0]
    return [GenerationRequest(first["messages"], SamplingParams(0.0, 1.0, 4), 0)]


if __name__ == "__main__":
    raise SystemExit(main())
