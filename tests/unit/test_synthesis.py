"""``synthesize`` row building with a small scripted engine (no model)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from prefmill.engines.base import Engine, Generation, GenerationRequest, Messages, SamplingParams
from prefmill.errors import EngineError, RecipeError, SchemaError
from prefmill.ids import canonical_json, content_id, seed_for
from prefmill.storage.schemas import MESSAGE, conform, schema_for
from prefmill.tasks.synthesis import SYNTHESIS_CODE_VERSION, synthesize


class ScriptedEngine:
    """Answers ``<content>|<temperature>|<seed>``; a prompt containing 'FAIL' gets an error row."""

    name = "scripted:echo"
    model = "echo"
    supports_response_format = False

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []
        self.calls = 0

    def generate(self, requests: list[GenerationRequest], progress=None) -> list[Generation]:
        self.calls += 1
        self.requests.extend(requests)
        out = []
        for r in requests:
            content = r.messages[-1]["content"]
            if "FAIL" in content:
                out.append(Generation.failed("prompt has 9000 tokens; exceeds the model context"))
            else:
                text = f"{content}|{r.sampling.temperature}|{r.seed}"
                out.append(Generation(text, len(text), 5, "stop", -1.5, 2.0, None))
        if progress is not None:
            progress(len(requests))
        return out

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        return [0.0] * len(items)


def _prompts(*contents: str) -> pa.Table:
    return pa.table(
        {
            "prompt_id": pa.array([f"p{i}" for i in range(len(contents))], pa.string()),
            "messages": pa.array([[{"role": "user", "content": c}] for c in contents], pa.list_(MESSAGE)),
            "source": pa.array(["test"] * len(contents), pa.string()),
        }
    )


def _run(prompts: pa.Table, engine: ScriptedEngine | None = None, **kw) -> pa.Table:
    args = {"k": 3, "temperatures": [0.2, 1.0], "top_p": 0.9, "max_new_tokens": 16, "seed": 7}
    args.update(kw)
    return synthesize(prompts, engine or ScriptedEngine(), **args)


def test_scripted_engine_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedEngine(), Engine)


def test_rows_ladder_seeds_and_ids() -> None:
    engine = ScriptedEngine()
    out = _run(_prompts("a", "b"), engine)
    assert out.schema.equals(schema_for("candidates"))
    conform("candidates", out)  # still conforms when checked again
    rows = out.to_pylist()
    assert [(r["prompt_id"], r["sample_index"]) for r in rows] == [
        ("p0", 0), ("p0", 1), ("p0", 2), ("p1", 0), ("p1", 1), ("p1", 2),
    ]  # fmt: skip
    for r in rows:
        temp = [0.2, 1.0][r["sample_index"] % 2]
        seed = seed_for(7, r["prompt_id"], r["sample_index"])
        sampling = {"temperature": temp, "top_p": 0.9, "max_new_tokens": 16, "seed": seed}
        assert json.loads(r["sampling"]) == sampling
        assert r["sampling"] == canonical_json(sampling)
        assert r["candidate_id"] == content_id(
            [r["prompt_id"], "scripted:echo", r["sampling"], r["sample_index"]]
        )
        content = "a" if r["prompt_id"] == "p0" else "b"
        assert r["response"] == f"{content}|{temp}|{seed}"  # each row holds its own request's answer
        assert r["generator"] == "scripted:echo"
        assert r["origin"] == "online"
        assert (r["n_tokens"], r["prompt_tokens"], r["finish_reason"]) == (len(r["response"]), 5, "stop")
        assert (r["logprob"], r["latency_ms"], r["error"]) == (-1.5, 2.0, None)
    assert len({r["candidate_id"] for r in rows}) == 6
    # one engine call for the whole shard, requests built as documented
    assert engine.calls == 1
    assert [r.sampling for r in engine.requests[:3]] == [
        SamplingParams(0.2, 0.9, 16), SamplingParams(1.0, 0.9, 16), SamplingParams(0.2, 0.9, 16),
    ]  # fmt: skip
    assert engine.requests[0].messages == [{"role": "user", "content": "a"}]


def test_same_inputs_same_ids_other_seed_other_ids() -> None:
    prompts = _prompts("a", "b")
    first, again, other = _run(prompts), _run(prompts), _run(prompts, seed=8)
    assert first.equals(again)
    ids = set(first.column("candidate_id").to_pylist())
    assert ids.isdisjoint(other.column("candidate_id").to_pylist())


def test_error_rows_are_kept() -> None:
    out = _run(_prompts("ok", "please FAIL"), k=2)
    rows = out.to_pylist()
    assert len(rows) == 4
    failed = [r for r in rows if r["prompt_id"] == "p1"]
    assert all(r["response"] is None and "exceeds the model context" in r["error"] for r in failed)
    assert all(r["finish_reason"] is None and r["logprob"] is None for r in failed)
    assert all(r["error"] is None and r["response"] for r in rows if r["prompt_id"] == "p0")


def test_progress_is_passed_through() -> None:
    seen: list[int] = []
    _run(_prompts("a", "b"), progress=seen.append)
    assert seen == [6]


def test_empty_shard_makes_no_engine_call() -> None:
    engine = ScriptedEngine()
    out = _run(_prompts(), engine)
    assert out.num_rows == 0
    assert out.schema.equals(schema_for("candidates"))
    assert engine.calls == 0


def test_single_temperature_and_k1() -> None:
    out = _run(_prompts("a"), k=1, temperatures=[0.0])
    assert json.loads(out.column("sampling")[0].as_py())["temperature"] == 0.0


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"temperatures": []}, "at least one"),
        ({"temperatures": [-0.5]}, "temperatures must be >= 0"),
        ({"top_p": 0.0}, "top_p must be in (0, 1]"),
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
    ],
)
def test_bad_config(kw: dict, fragment: str) -> None:
    with pytest.raises(RecipeError, match=fragment.replace("(", r"\(").replace("]", r"\]")):
        _run(_prompts("a"), **kw)


def test_missing_columns() -> None:
    with pytest.raises(SchemaError, match="messages"):
        _run(pa.table({"prompt_id": ["p0"]}))


def test_engine_returning_too_few_results() -> None:
    class Short(ScriptedEngine):
        def generate(self, requests, progress=None):
            return super().generate(requests)[:-1]

    with pytest.raises(EngineError, match="returned 2 results for 3 requests"):
        _run(_prompts("a"), Short())


def test_code_version_is_a_string() -> None:
    assert SYNTHESIS_CODE_VERSION == "2"


class FlakyEngine(ScriptedEngine):
    """Fails every request on its first call, answers on later calls (a transient outage)."""

    def generate(self, requests: list[GenerationRequest], progress=None) -> list[Generation]:
        if self.calls == 0:
            self.calls += 1
            self.requests.extend(requests)
            return [Generation.failed("HTTP 503 from the engine") for _ in requests]
        return super().generate(requests, progress)


def test_only_restricts_the_samples_and_keeps_their_ids() -> None:
    prompts = _prompts("a", "b")
    full = _run(prompts)
    part = _run(prompts, only={("p1", 2), ("p0", 0)})
    assert sorted(zip(part["prompt_id"].to_pylist(), part["sample_index"].to_pylist(), strict=True)) == [
        ("p0", 0),
        ("p1", 2),
    ]
    same = {r["candidate_id"]: r for r in full.to_pylist()}
    for row in part.to_pylist():
        assert same[row["candidate_id"]] == row  # same seed, same id, same text


def test_retry_failed_regenerates_only_error_rows() -> None:
    from prefmill.tasks.synthesis.online import retry_failed

    prompts = _prompts("a", "b", "FAIL here")
    args = {"k": 2, "temperatures": [0.5], "top_p": 0.9, "max_new_tokens": 16, "seed": 1}
    flaky = FlakyEngine()
    first = synthesize(prompts.slice(0, 2), flaky, **args)
    assert first.column("error").null_count == 0  # every row failed
    # the first call failed everything; a retry goes to the engine only for the failed rows
    mixed = pa.concat_tables([first.slice(0, 2), _run(prompts.slice(1, 2), **args).slice(0, 2)])
    mixed = pa.concat_tables([mixed, synthesize(prompts.slice(2, 1), ScriptedEngine(), **args)])
    assert mixed.column("error").to_pylist().count(None) == 2
    engine = ScriptedEngine()
    retried, n = retry_failed(mixed, prompts, engine, **args)
    assert n == 4 and len(engine.requests) == 4
    assert retried.column("candidate_id").to_pylist() == mixed.column("candidate_id").to_pylist()
    rows = retried.to_pylist()
    assert [r["error"] is None for r in rows] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]  # FAIL prompt fails again
    assert rows[2:4] == mixed.to_pylist()[2:4]  # good rows untouched
    untouched, zero = retry_failed(retried.slice(0, 4), prompts, ScriptedEngine(), **args)
    assert zero == 0 and untouched.equals(retried.slice(0, 4))
