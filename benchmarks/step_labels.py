"""Step labels: first-error localisation of Monte-Carlo rollouts vs binary search, and their cost.

Run::

    .venv/bin/python benchmarks/step_labels.py [--solutions 24] [--steps 4,6,8] [--n 4]
        [--engine transformers:smollm2 | oracle] [--slip 0.0] [--max-new-tokens 96] [--smoke]

Solutions are generated: a chain of arithmetic steps (``Step i: a op b = c``) computed correctly,
then one error injected at a known step (the result is off by a few; later steps compute correctly
from the wrong value, so the final answer is wrong), plus a quarter left correct (no wrong step).
Each solution is labelled by the ``rollout`` judge's Monte-Carlo (n continuations from every step
prefix) and by ``rollout_search``'s bisection, through the same code the judges run
(``prefmill.tasks.evaluation.rollouts``), with the same engine and seeds. It prints, per method,
the accuracy of the first wrong step found (exact step; correct solutions must be found correct),
rollouts (generations) and engine calls per solution, and the ratio binary / Monte-Carlo of
rollouts. The goal: binary search as accurate as Monte-Carlo with <= 50% of its rollouts.

``--engine oracle`` is a scripted policy that continues a prefix by finishing the chain correctly
from the last value written (with probability ``--slip`` a rollout makes its own mistake): with
``--slip 0`` both methods must find every injected error (exit status 1 when they do not: the
check that they give the same labels). ``--smoke`` runs the oracle on a few solutions in seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import time
from datetime import UTC, datetime

import pyarrow as pa

from prefmill.engines.base import Generation, GenerationRequest
from prefmill.ids import seed_for
from prefmill.tasks.evaluation.judges.rollout import RolloutJudge
from prefmill.tasks.evaluation.judges.rollout_search import RolloutSearchJudge
from prefmill.tasks.evaluation.judges.step_llm import StepLLMJudge
from prefmill.tasks.evaluation.rollouts import Solution, binary_search, monte_carlo, solutions
from prefmill.tasks.evaluation.step_judge import step_llm_judge
from prefmill.tasks.steps.config import StepsConfig

OPS = ("+", "-", "*")
_STEP = re.compile(r"Step (\d+): (-?\d+) ([+*-]) (\d+) = (-?\d+)")


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def make_problem(rng: random.Random, steps: int, error_at: int | None) -> tuple[str, str, str, int | None]:
    """(question, response, reference, first wrong step index) of one generated solution."""
    start = rng.randint(2, 20)
    ops = [(rng.choice(OPS), rng.randint(2, 9)) for _ in range(steps - 1)]
    ops = [(op if op != "*" or i % 2 else "+", b) for i, (op, b) in enumerate(ops)]  # keep numbers small
    value, right, lines = start, start, []
    for i, (op, b) in enumerate(ops):
        right = _apply(right, op, b)
        result = _apply(value, op, b)
        if i == error_at:
            result += rng.choice((-3, -2, -1, 1, 2, 3))
        lines.append(f"Step {i + 1}: {value} {op} {b} = {result}")
        value = result
    lines.append(f"The answer is {value}.")
    told = ", then ".join(
        f"{'add' if op == '+' else 'subtract' if op == '-' else 'multiply by'} {b}" for op, b in ops
    )
    question = (
        f"Start with {start}, then {told}. Work it out one operation per line, as "
        "'Step n: a op b = c', and end with 'The answer is N.'"
    )
    return question, "\n".join(lines), str(right), error_at


class Oracle:
    """A scripted policy: finishes the chain correctly from the last value the prefix wrote (each
    rollout slips with probability ``slip``), so a prefix holding a wrong step never recovers."""

    name = "oracle"
    model = "oracle"
    supports_response_format = False
    supports_assistant_prefix = True

    def __init__(self, slip: float) -> None:
        self.slip = slip
        self.calls = 0

    def judge(self, r: GenerationRequest) -> Generation:
        """A first-error judge's ask: the first numbered step whose arithmetic is wrong (slips too)."""
        text = r.messages[-1]["content"]
        steps = re.findall(r"^\((\d+)\) (.*)$", text, flags=re.M)
        first, value = 0, None
        for k, line in steps:
            m = _STEP.search(line)
            if m:
                ok = _apply(int(m.group(2)), m.group(3), int(m.group(4))) == int(m.group(5))
                value = int(m.group(5))
            else:
                got = re.search(r"(-?\d+)", line)
                ok = got is not None and value is not None and int(got.group(1)) == value
            if not ok:
                first = int(k)
                break
        rng = random.Random(r.seed)
        if rng.random() < self.slip:
            first = rng.randrange(len(steps) + 1)
        return Generation(f'{{"first_error": {first}}}', 6, 80, "stop", -1.0, 0.1)

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        self.calls += 1
        out = []
        for r in requests:
            if r.assistant_prefix is None:
                out.append(self.judge(r))
                continue
            question = r.messages[-1]["content"]
            start = int(re.search(r"Start with (\d+)", question).group(1))  # type: ignore[union-attr]
            ops = re.findall(r"(add|subtract|multiply by) (\d+)", question)
            done = _STEP.findall(r.assistant_prefix or "")
            value = int(done[-1][4]) if done else start
            rng = random.Random(r.seed)
            lines = []
            for i, (word, b) in enumerate(ops[len(done) :], start=len(done)):
                op = {"add": "+", "subtract": "-", "multiply by": "*"}[word]
                result = _apply(value, op, int(b)) + (1 if rng.random() < self.slip else 0)
                lines.append(f"Step {i + 1}: {value} {op} {b} = {result}")
                value = result
            lines.append(f"The answer is {value}.")
            out.append(Generation("\n" + "\n".join(lines), 8 * len(lines), 40, "stop", -1.0, 0.1))
        return out


def _dataset(n: int, step_counts: list[int], seed: int) -> tuple[pa.Table, dict[str, int | None]]:
    rng = random.Random(seed)
    rows, truth = [], {}
    for i in range(n):
        steps = step_counts[i % len(step_counts)]
        error_at = None if i % 4 == 3 else rng.randrange(steps - 1)
        question, response, reference, first = make_problem(rng, steps, error_at)
        cid = f"s{i:03d}"
        rows.append((cid, question, response, reference))
        truth[cid] = first
    table = pa.table(
        {
            "candidate_id": [r[0] for r in rows],
            "prompt_id": [f"p{r[0]}" for r in rows],
            "messages": [[{"role": "user", "content": r[1]}] for r in rows],
            "reference": [r[3] for r in rows],
            "response": [r[2] for r in rows],
        }
    )
    return table, truth


def _score(sols: list[Solution], truth: dict[str, int | None]) -> tuple[float, float]:
    hits = sum(s.first_error == truth[s.candidate_id] for s in sols)
    return hits / len(sols), sum(s.rollouts for s in sols) / len(sols)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solutions", type=int, default=24)
    parser.add_argument(
        "--steps", default="4,6,8", help="steps per solution (the final answer line included)"
    )
    parser.add_argument("--n", type=int, default=4, help="continuations per tested step prefix")
    parser.add_argument("--engine", default="transformers:smollm2", help="an engine spec, or `oracle`")
    parser.add_argument("--slip", type=float, default=0.0, help="oracle: chance a rollout slips")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="seconds: the oracle on 8 solutions")
    args = parser.parse_args()
    if args.smoke:
        args.engine, args.solutions, args.slip = "oracle", 8, 0.0
    step_counts = [int(s) for s in args.steps.split(",")]
    cands, truth = _dataset(args.solutions, step_counts, args.seed)
    segmenter = StepsConfig(segmenter="lines")
    common = {
        "n": args.n,
        "temperature": args.temperature,
        "max_new_tokens": args.max_new_tokens,
        "verifier": "math",
        "segmenter": segmenter,
        "seed": seed_for(args.seed, "bench"),
        "name": "bench",  # the same name: both methods draw the same rollouts for a step
    }
    if args.engine == "oracle":
        engine = Oracle(args.slip)
    else:
        from prefmill.engines.registry import get_engine

        engine = get_engine(args.engine)
    print(f"step_labels: {args.solutions} solutions of {args.steps} steps, n={args.n}, engine {args.engine}")
    print(f"  machine: {platform.machine()} {os.cpu_count()} cpus; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    results = {}
    for label, config in (
        ("monte-carlo", RolloutJudge(kind="rollout", **common)),
        ("binary-search", RolloutSearchJudge(kind="rollout_search", **common)),
    ):
        sols = solutions(config, cands)
        calls_before = getattr(engine, "calls", 0)
        started = time.perf_counter()
        if label == "monte-carlo":
            monte_carlo(config, engine, sols)
        else:
            binary_search(config, engine, sols)
        seconds = time.perf_counter() - started
        calls = getattr(engine, "calls", 0) - calls_before
        accuracy, rollouts = _score(sols, truth)
        wrong = [s for s in sols if truth[s.candidate_id] is not None]
        results[label] = (accuracy, rollouts, sols)
        on_wrong = _score(wrong, truth)[0]
        print(
            f"  {label:14s} first-error accuracy {accuracy:6.1%} (wrong solutions {on_wrong:6.1%}), "
            f"{rollouts:6.2f} rollouts/solution, {calls} engine calls, {seconds:7.1f} s"
        )
    (mc_acc, mc_roll, mc_sols), (bs_acc, bs_roll, bs_sols) = results["monte-carlo"], results["binary-search"]
    judge = StepLLMJudge(kind="step_llm", segmenter=segmenter, max_new_tokens=16, name="bench-judge")
    started = time.perf_counter()
    rows = step_llm_judge(judge, cands, engine).to_pylist()
    seconds = time.perf_counter() - started
    named: dict[str, int | None] = {}
    for r in sorted(rows, key=lambda r: (r["candidate_id"], r["unit_index"])):
        if r["score"] is None:
            named[r["candidate_id"]] = -1  # an unusable reply names no step: a miss
        elif r["candidate_id"] not in named:
            named[r["candidate_id"]] = None
        if r["score"] == 0.0 and named[r["candidate_id"]] is None:
            named[r["candidate_id"]] = r["unit_index"]
    judge_acc = sum(named.get(c, -1) == t for c, t in truth.items()) / len(truth)
    print(
        f"  {'llm-judge':14s} first-error accuracy {judge_acc:6.1%}, 1 judge call/solution, {seconds:7.1f} s"
    )
    kept = [s for s in mc_sols if named.get(s.candidate_id, -1) == s.first_error]
    kept_acc = sum(s.first_error == truth[s.candidate_id] for s in kept) / len(kept) if kept else math.nan
    print(
        f"  {'consensus':14s} monte-carlo and judge agree on {len(kept)}/{len(mc_sols)} solutions; "
        f"first-error accuracy on those {kept_acc:6.1%}"
    )
    ratio = bs_roll / mc_roll if mc_roll else math.nan
    print(f"  binary / monte-carlo rollouts: {ratio:.3f}; accuracy {bs_acc:.1%} vs {mc_acc:.1%}")
    agree = sum(a.first_error == b.first_error for a, b in zip(mc_sols, bs_sols, strict=True))
    print(f"  same first error on {agree}/{len(mc_sols)} solutions")
    if args.engine == "oracle" and args.slip == 0 and (mc_acc < 1 or bs_acc < 1 or agree < len(mc_sols)):
        print("FAIL: with an exact oracle both methods must find every injected error")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
