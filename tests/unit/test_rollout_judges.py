"""Step-level rollout judges: Monte-Carlo labels and the binary search for the first wrong step, on a
scripted engine that continues an assistant prefix (no model)."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

import prefmill.engines.registry as engine_registry
from prefmill.engines.base import Generation, GenerationRequest
from prefmill.errors import EngineError, RecipeError
from prefmill.tasks.evaluation.judge import judge_shard
from prefmill.tasks.evaluation.judges.rollout import RolloutJudge
from prefmill.tasks.evaluation.judges.rollout_search import RolloutSearchJudge
from prefmill.tasks.evaluation.rollouts import binary_search, monte_carlo, solutions
from prefmill.tasks.steps.config import StepsConfig

LINES = StepsConfig()


class Continuer:
    """Continues a prefix with the right final answer unless the prefix holds a wrong step ("BAD")."""

    name = "scripted:continuer"
    model = "continuer"
    supports_response_format = False
    supports_assistant_prefix = True

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self.calls = 0

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        self.calls += 1
        self.requests += requests
        out = []
        for r in requests:
            assert r.assistant_prefix is not None
            answer = "0" if "BAD" in r.assistant_prefix else r.messages[-1]["content"].split("=")[-1]
            out.append(Generation(f"\nThe answer is {answer}", 4, 10, "stop", -1.0, 1.0))
        return out


def chain(n: int, bad: int | None, answer: int) -> str:
    lines = [f"Step {i + 1}: {'BAD' if i == bad else 'ok'}" for i in range(n - 1)]
    final = answer if bad is None else answer + 1
    return "\n".join([*lines, f"The answer is {final}"])


def cands(*rows: tuple[str, str]) -> pa.Table:
    return pa.table(
        {
            "candidate_id": [c for c, _ in rows],
            "prompt_id": ["p"] * len(rows),
            "messages": [[{"role": "user", "content": "compute, ref=14"}]] * len(rows),
            "reference": ["14"] * len(rows),
            "response": [r for _, r in rows],
        }
    )


SHARD = cands(("wrong", chain(8, 3, 14)), ("right", chain(5, None, 14)), ("last", chain(4, 3, 14)))


def test_monte_carlo_labels_every_step_and_finds_the_first_error() -> None:
    config = RolloutJudge(kind="rollout", n=3, verifier="arithmetic", segmenter=LINES)
    engine = Continuer()
    sols = solutions(config, SHARD)
    monte_carlo(config, engine, sols)
    wrong, right, last = sols
    assert wrong.first_error == 3 and right.first_error is None and last.first_error == 3
    assert [wrong.measured[i][0] for i in range(7)] == [3, 3, 3, 0, 0, 0, 0]
    assert wrong.rollouts == 3 * 7 and right.rollouts == 3 * 4 and engine.calls == 1
    # the continuations start from the prefix that ends each step
    first = next(r for r in engine.requests if r.assistant_prefix and "Step 2" not in r.assistant_prefix)
    assert first.assistant_prefix == "Step 1: ok" and first.sampling.temperature == 0.7


def test_binary_search_finds_the_same_step_with_log_rollouts() -> None:
    config = RolloutSearchJudge(kind="rollout_search", n=3, verifier="arithmetic", segmenter=LINES)
    engine = Continuer()
    sols = solutions(config, SHARD)
    calls = binary_search(config, engine, sols)
    wrong, right, last = sols
    assert (wrong.first_error, right.first_error, last.first_error) == (3, None, 3)
    assert wrong.rollouts == 3 * math.ceil(math.log2(8)) and right.rollouts == 0
    assert last.rollouts <= 3 * 2 and calls == 3  # one engine call per round for all solutions


def test_judges_write_step_rows_through_judge_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Continuer()
    monkeypatch.setattr(engine_registry, "get_engine", lambda spec, **_: engine)
    mc = RolloutJudge(kind="rollout", n=2, verifier="math", segmenter=LINES)
    search = RolloutSearchJudge(kind="rollout_search", n=2, segmenter=LINES, name="bs")
    rows = judge_shard(SHARD, [mc, search]).to_pylist()
    assert {r["granularity"] for r in rows} == {"step"} and {r["mode"] for r in rows} == {"point"}
    wrong = sorted(
        (r for r in rows if r["candidate_id"] == "wrong"), key=lambda r: (r["judge"], r["unit_index"])
    )
    bs = [r["score"] for r in wrong if r["judge"] == "bs"]
    soft = [r["score"] for r in wrong if r["judge"] != "bs"]
    assert bs == [1, 1, 1, 0, 0, 0, 0, 0] and soft == [1, 1, 1, 0, 0, 0, 0, 0]
    assert [r["unit_index"] for r in wrong if r["judge"] == "bs"] == list(range(8))
    raw = json.loads(wrong[0]["raw"])
    assert raw["first_error"] == 3 and raw["solution_rollouts"] == 6  # bs: 3 rounds of 2
    assert wrong[-1]["rationale"] == "step 7: the response's own answer is wrong"
    assert len({r["judgment_id"] for r in rows}) == len(rows)


def test_step_judges_refuse_missing_steps_and_engines_without_prefixes() -> None:
    with pytest.raises(RecipeError, match=r"rollout\): step labels need steps; add a `steps` section"):
        solutions(RolloutJudge(kind="rollout"), SHARD)
    engine = Continuer()
    engine.supports_assistant_prefix = False
    config = RolloutJudge(kind="rollout", n=1, segmenter=LINES)
    with pytest.raises(EngineError, match="cannot continue an assistant prefix"):
        monte_carlo(config, engine, solutions(config, SHARD))


def test_a_recipe_with_a_step_judge_needs_a_steps_section() -> None:
    from prefmill.flows.plans.evaluation import judge_configs
    from prefmill.recipe import parse_recipe

    base = "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 2}]\nevaluation:\n  judges: [rollout]\n"
    with pytest.raises(RecipeError, match=r"^evaluation\.judges\[0\] \(rollout\): step labels need steps"):
        judge_configs(parse_recipe(base))
    (config,) = judge_configs(parse_recipe(base + "steps: {segmenter: step-n}\n"))
    assert config.segmenter == StepsConfig(segmenter="step-n")
