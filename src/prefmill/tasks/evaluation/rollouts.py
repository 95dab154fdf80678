"""Step labels from rollouts (Math-Shepherd Monte-Carlo; OmegaPRM-style binary search).

A solution is a candidate with a reference, cut into steps (``tasks/steps/segment.py``). From the
prefix that ends step ``i`` the engine samples ``n`` continuations (``assistant_prefix``); the share
whose whole answer (prefix + continuation) the verifier accepts is step ``i``'s soft label, and
"any accepted" its hard label. The last step's prefix is the response itself, so its label is the
verifier's verdict on the response (no rollouts).

- ``monte_carlo``: every step but the last is rolled out; all in one engine call.
- ``binary_search``: a solution whose answer the verifier accepts is correct throughout (no
  rollouts); otherwise the first step with no accepted continuation is found by bisection over the
  steps (the last step is known bad), one engine call per round for every unresolved solution:
  ``ceil(log2(steps))`` batches of ``n`` instead of ``steps - 1``. Steps before it are labelled 1, it
  and those after 0 (a wrong step spoils what follows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prefmill.engines.base import GenerationRequest, SamplingParams, can_continue
from prefmill.errors import EngineError, RecipeError
from prefmill.ids import content_id, seed_for
from prefmill.progress import count_generated

if TYPE_CHECKING:
    import pyarrow as pa

    from prefmill.engines.base import Engine
    from prefmill.tasks.evaluation.judges._rollout_config import RolloutSection
    from prefmill.tasks.steps.segment import Step


@dataclass
class Solution:
    """One candidate to label, and what its rollouts found: step -> (accepted, rolled out)."""

    candidate_id: str
    prompt_id: str
    messages: list[dict[str, str]]
    reference: str
    response: str
    steps: list[Step]
    measured: dict[int, tuple[int, int]] = field(default_factory=dict)
    final_ok: bool = False
    first_error: int | None = None

    @property
    def rollouts(self) -> int:
        return sum(n for _, n in self.measured.values())

    def prefix(self, i: int) -> str:
        return self.response[: self.steps[i].char_end]


def accepts(config: RolloutSection, answer: str, reference: str) -> bool:
    """Whether the configured verifier accepts ``answer`` for ``reference``."""
    if config.verifier == "arithmetic":
        from prefmill.tasks.evaluation.extract import extract_final_number, numbers_equal

        return numbers_equal(extract_final_number(answer), reference)
    from prefmill.tasks.evaluation.judges.math import MathVerifier
    from prefmill.tasks.evaluation.math_answer import verify_math

    return verify_math(answer, reference, MathVerifier(kind="math"))[0] == 1.0


def solutions(config: RolloutSection, cands: pa.Table) -> list[Solution]:
    """The candidates of ``cands`` with a response, a reference and steps (segmented here)."""
    from prefmill.tasks.steps.segment import checked_steps

    if config.segmenter is None:
        raise RecipeError(
            f"evaluation.judges ({config.kind}): step labels need steps; add a `steps` section to the "
            "recipe (e.g. `steps: {segmenter: lines}`) or set the judge's `segmenter`"
        )
    missing = [c for c in ("messages", "reference", "response") if c not in cands.column_names]
    if missing:
        raise RecipeError(f"{config.kind} judge: the candidates lack {', '.join(missing)}")
    out = []
    for r in cands.select(["candidate_id", "prompt_id", "messages", "reference", "response"]).to_pylist():
        if r["reference"] is None or r["response"] is None:
            continue
        steps = checked_steps(r["candidate_id"], r["response"], config.segmenter)
        if not steps:
            continue
        sol = Solution(r["candidate_id"], r["prompt_id"], r["messages"], r["reference"], r["response"], steps)
        sol.final_ok = accepts(config, r["response"], r["reference"])
        out.append(sol)
    return out


def roll_out(config: RolloutSection, engine: Engine, todo: list[tuple[Solution, int]]) -> None:
    """Sample ``n`` continuations from step ``i``'s prefix of each ``(solution, i)`` (one engine
    call) and record how many the verifier accepts."""
    if not todo:
        return
    if not can_continue(engine):
        raise EngineError(
            f"{config.kind} judge: engine {engine.name} cannot continue an assistant prefix; use a "
            "transformers, vllm or openai (vLLM server) engine"
        )
    sampling = SamplingParams(config.temperature, config.top_p, config.max_new_tokens)
    requests = [
        GenerationRequest(
            sol.messages,
            sampling,
            seed_for(config.seed, config.judge_name, sol.candidate_id, i, j),
            assistant_prefix=sol.prefix(i),
        )
        for sol, i in todo
        for j in range(config.n)
    ]
    gens = engine.generate(requests)
    count_generated(gens)
    if len(gens) != len(requests):
        raise EngineError(f"engine {engine.name} returned {len(gens)} results for {len(requests)} requests")
    for k, (sol, i) in enumerate(todo):
        batch = gens[k * config.n : (k + 1) * config.n]
        ok = sum(g.text is not None and accepts(config, sol.prefix(i) + g.text, sol.reference) for g in batch)
        sol.measured[i] = (ok, config.n)


def monte_carlo(config: RolloutSection, engine: Engine, sols: list[Solution]) -> None:
    """Roll out every step but the last of every solution; the first error is the first step whose
    hard label is 0."""
    roll_out(config, engine, [(s, i) for s in sols for i in range(len(s.steps) - 1)])
    for s in sols:
        hard = [s.measured[i][0] > 0 for i in range(len(s.steps) - 1)] + [s.final_ok]
        s.first_error = next((i for i, ok in enumerate(hard) if not ok), None)


def binary_search(config: RolloutSection, engine: Engine, sols: list[Solution]) -> int:
    """Find each wrong solution's first wrong step by bisection; returns the engine calls made."""
    bounds = {id(s): (0, len(s.steps) - 1) for s in sols if not s.final_ok}
    calls = 0
    while todo := [
        (s, (lo + hi) // 2) for s in sols if id(s) in bounds for lo, hi in [bounds[id(s)]] if lo < hi
    ]:
        roll_out(config, engine, todo)
        calls += 1
        for s, mid in todo:
            lo, hi = bounds[id(s)]
            bounds[id(s)] = (mid + 1, hi) if s.measured[mid][0] > 0 else (lo, mid)
    for s in sols:
        s.first_error = None if s.final_ok else bounds[id(s)][0]
    return calls


def step_judgment_id(judge: str, candidate_id: str, step: int) -> str:
    """Content id of [judge, candidate_id, other_candidate_id, criterion, granularity, unit_index, order]."""
    return content_id([judge, candidate_id, None, "overall", "step", step, None])


def step_judgments(config: RolloutSection, sols: list[Solution], *, soft: bool) -> pa.Table:
    """One ``judgments`` row per step: ``score`` the soft label (``soft``, Monte-Carlo) or the hard
    one; ``raw`` JSON with the step's rollouts, the solution's first error and rollouts in all."""
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table

    rows: list[dict[str, Any]] = []
    judge = config.judge_name
    for s in sols:
        last = len(s.steps) - 1
        for i in range(len(s.steps)):
            ok, n = s.measured.get(i, (None, 0))
            if i == last and i not in s.measured:
                share = 1.0 if s.final_ok else 0.0
                how = "the response's own answer " + ("is accepted" if s.final_ok else "is wrong")
            elif ok is not None:
                share = ok / n
                how = f"{ok}/{n} continuations reach an accepted answer"
            else:
                share = None
                how = "inferred from the first wrong step"
            if soft and share is not None:  # Monte-Carlo: hard = any continuation accepted
                hard, score = (1.0 if share > 0 else 0.0), share
            else:  # search: correct before the first wrong step, wrong from it on
                hard = 1.0 if (s.first_error is None or i < s.first_error) else 0.0
                score = hard
            rows.append(
                {
                    "judgment_id": step_judgment_id(judge, s.candidate_id, i),
                    "prompt_id": s.prompt_id,
                    "candidate_id": s.candidate_id,
                    "other_candidate_id": None,
                    "judge": judge,
                    "kind": "verifier",
                    "mode": "point",
                    "criterion": "overall",
                    "granularity": "step",
                    "unit_index": i,
                    "order": None,
                    "score": score,
                    "prefers_first": None,
                    "rationale": f"step {i}: {how}",
                    "raw": json.dumps(
                        {
                            "accepted": ok,
                            "rollouts": n,
                            "hard": hard,
                            "first_error": s.first_error,
                            "solution_rollouts": s.rollouts,
                        }
                    ),
                    "parse_error": None,
                }
            )
    if not rows:
        return empty_table("judgments")
    return conform("judgments", pa.Table.from_pylist(rows, schema=empty_table("judgments").schema))
