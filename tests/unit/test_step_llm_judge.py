"""The `step_llm` judge (a judge model names the first wrong step) and the `step_consensus` filter."""

from __future__ import annotations

import json

import pytest
from test_rollout_judges import SHARD, Continuer

import prefmill.engines.registry as engine_registry
from prefmill.engines.base import Generation, GenerationRequest
from prefmill.tasks.evaluation.judge import judge_shard
from prefmill.tasks.evaluation.judges.rollout import RolloutJudge
from prefmill.tasks.evaluation.judges.step_consensus import StepConsensusJudge
from prefmill.tasks.evaluation.judges.step_llm import StepLLMJudge
from prefmill.tasks.evaluation.step_judge import parse_first_error, step_llm_judge
from prefmill.tasks.steps.config import StepsConfig

LINES = StepsConfig()


class Marker:
    """A judge model that names the first line holding "BAD" (1-based; 0 when none), or garbage."""

    name = "scripted:marker"
    model = "marker"
    supports_response_format = True

    def __init__(self, reply: str | None = None, late: int = 0) -> None:
        self.reply = reply
        self.late = late  # names a step this much after the first "BAD" one
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        self.requests += requests
        out = []
        for r in requests:
            text = r.messages[0]["content"]
            lines = [ln for ln in text.splitlines() if ln.startswith("(")]
            first = next((k + self.late for k, ln in enumerate(lines, 1) if "BAD" in ln), 0)
            out.append(Generation(self.reply or json.dumps({"first_error": first}), 5, 50, "stop", -1.0, 1.0))
        return out


def test_the_named_step_splits_the_labels() -> None:
    engine = Marker()
    rows = step_llm_judge(StepLLMJudge(kind="step_llm", segmenter=LINES), SHARD, engine).to_pylist()
    by = {c: [r["score"] for r in rows if r["candidate_id"] == c] for c in ("wrong", "right", "last")}
    # "last" is wrong only in its final answer line, which this judge model does not check
    assert by == {"wrong": [1, 1, 1, 0, 0, 0, 0, 0], "right": [1] * 5, "last": [1, 1, 1, 1]}
    assert {r["kind"] for r in rows} == {"llm"} and {r["granularity"] for r in rows} == {"step"}
    prompt = engine.requests[0].messages[0]["content"]
    assert "(1) Step 1: ok" in prompt and "[Correct final answer]\n14" in prompt
    assert engine.requests[0].response_format is not None  # structured where the engine can


def test_unusable_replies_are_parse_errors_on_every_step() -> None:
    rows = step_llm_judge(
        StepLLMJudge(kind="step_llm", segmenter=LINES), SHARD, Marker("no idea")
    ).to_pylist()
    assert all(r["score"] is None and r["parse_error"] for r in rows)
    assert parse_first_error('{"first_error": 9}', 8)[1] == "first_error 9 is not a step number (1..8) or 0"
    assert parse_first_error('{"first_error": 0}', 3) == (None, None)
    assert parse_first_error("step 2", 3) == (1, None)


def test_consensus_keeps_the_steps_both_judges_agree_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # the rollouts find step 3 of "wrong"; this judge model names step 4; on "last" it sees no error
    engines = {"scripted:continuer": Continuer(), "scripted:marker": Marker(late=1)}
    monkeypatch.setattr(engine_registry, "get_engine", lambda spec, **_: engines[spec])
    judges = [
        RolloutJudge(kind="rollout", engine="scripted:continuer", n=2, segmenter=LINES, name="mc"),
        StepLLMJudge(kind="step_llm", engine="scripted:marker", segmenter=LINES, name="lj"),
        StepConsensusJudge(kind="step_consensus", judges=["mc", "lj"]),
    ]
    rows = judge_shard(SHARD, judges).to_pylist()
    kept = {
        c: [
            (r["unit_index"], r["score"])
            for r in rows
            if r["judge"] == "step-consensus" and r["candidate_id"] == c
        ]
        for c in ("wrong", "right", "last")
    }
    assert kept["wrong"] == [(i, 1.0 if i < 3 else 0.0) for i in range(8) if i != 3]
    assert kept["right"] == [(i, 1.0) for i in range(5)]
    assert kept["last"] == [(0, 1.0), (1, 1.0), (2, 1.0)]
    raw = json.loads(next(r["raw"] for r in rows if r["judge"] == "step-consensus"))
    assert raw == {"lj": 1.0, "mc": 1.0}
