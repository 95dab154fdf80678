"""The scripted engine: deterministic replies at once, through the engine registry."""

from __future__ import annotations

import math
import random

import pytest

from prefmill.engines.base import Generation, GenerationRequest, SamplingParams
from prefmill.engines.registry import get_engine
from prefmill.engines.samples import COLUMNS, SampleBatch, generate_samples, generation_columns
from prefmill.engines.scripted.engine import ScriptedEngine
from prefmill.errors import EngineError


def _request(text: str, seed: int, max_new_tokens: int = 16, temperature: float = 0.7) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": text}], SamplingParams(temperature, 1.0, max_new_tokens), seed
    )


def test_same_request_same_text_and_seeds_differ() -> None:
    engine = get_engine("scripted:echo?words=5", batch_size=4)
    assert engine.name == "scripted:echo"
    done: list[int] = []
    first = engine.generate([_request("hi", 1), _request("hi", 2), _request("other", 1)], done.append)
    again = engine.generate([_request("hi", 1)])
    assert first[0].text == again[0].text
    assert len({g.text for g in first}) == 3
    assert all(3 <= g.n_tokens <= 5 and len(g.text.split()) == g.n_tokens for g in first)
    assert all(g.finish_reason == "stop" for g in first)
    lengths = {g.n_tokens for g in engine.generate([_request("hi", seed) for seed in range(20)])}
    assert lengths == {3, 4, 5}
    assert done == [3]


def test_max_new_tokens_cuts_and_bad_sampling_is_an_error_row() -> None:
    engine = get_engine("scripted:echo", batch_size=4)
    short, bad = engine.generate([_request("hi", 1, max_new_tokens=3), _request("hi", 1, temperature=-1)])
    assert short.n_tokens == 3 and len(short.text.split()) == 3 and short.finish_reason == "length"
    assert bad.text is None and "temperature" in bad.error
    assert engine.score([([], "a b c")]) == [-2.0]


def _random_batch(rng: random.Random) -> SampleBatch:
    texts = ["", "hi", "héllo wörld 中文 🙂", "a  b\tc\nd", "FAIL please", "x" * 300]
    messages = [
        [] if rng.random() < 0.1 else [{"role": "user", "content": rng.choice(texts) + str(n)}]
        for n in range(rng.randint(1, 6))
    ]
    params = [
        SamplingParams(
            rng.choice([0.0, 0.7, 1.0, -1.0, math.inf, math.nan]),
            rng.choice([1.0, 0.5, 0.0]),
            rng.choice([1, 3, 16, 0]),
        )
        for _ in range(rng.randint(1, 4))
    ]
    n = rng.randint(0, 40)
    return SampleBatch(
        messages,
        params,
        [rng.randrange(len(messages)) for _ in range(n)],
        [rng.randrange(len(params)) for _ in range(n)],
        [rng.choice([0, 1, 996, 997, 2**63 - 1, rng.getrandbits(63)]) for _ in range(n)],
    )


def test_column_wise_answers_equal_the_request_by_request_ones() -> None:
    rng = random.Random(15)
    for words in (1, 2, 5, 12):
        engine = ScriptedEngine("echo", words=words)
        for _ in range(30):
            batch = _random_batch(rng)
            done: list[int] = []
            columns = engine.generate_columns(batch, done.append)
            want = generation_columns(engine.generate(batch.requests()))
            assert {name: columns[name].to_pylist() for name in COLUMNS} == {
                name: want[name].to_pylist() for name in COLUMNS
            }
            assert done == ([len(batch)] if len(batch) else [])
            # the synthesis stage's entry point takes the column-wise path and gives the same
            assert generate_samples(engine, batch)["response"].to_pylist() == want["response"].to_pylist()


class _PerRequest:
    """An engine without ``generate_columns``: answers request by request, one error row."""

    name = "per-request"
    model = "m"
    supports_response_format = False

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        return [
            Generation.failed("boom", prompt_tokens=2)
            if r.seed == 0
            else Generation(f"{r.messages[0]['content']}/{r.seed}", 1, 2, "stop", -0.5, 1.5, cost_usd=0.25)
            for r in requests
        ]

    def score(self, items: list) -> list[float]:
        return [0.0] * len(items)


def test_engines_without_columns_get_one_request_per_sample() -> None:
    batch = SampleBatch(
        [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
        [SamplingParams()],
        [1, 0, 1],
        [0, 0, 0],
        [5, 0, 6],
    )
    columns = generate_samples(_PerRequest(), batch)
    assert columns["response"].to_pylist() == ["b/5", None, "b/6"]
    assert columns["error"].to_pylist() == [None, "boom", None]
    assert columns["cost_usd"].to_pylist() == [0.25, None, 0.25]
    assert columns["n_tokens"].to_pylist() == [1, 0, 1] and columns["prompt_tokens"].to_pylist() == [2, 2, 2]
    assert [r.seed for r in batch.requests()] == [5, 0, 6]


def test_an_engine_that_loses_samples_is_an_error() -> None:
    class Short(_PerRequest):
        def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
            return super().generate(requests[1:])

    batch = SampleBatch([[{"role": "user", "content": "a"}]], [SamplingParams()], [0, 0], [0, 0], [1, 2])
    with pytest.raises(EngineError, match="returned 1 results for 2"):
        generate_samples(Short(), batch)


def test_an_engine_built_on_the_scripted_one_answers_through_its_own_generate() -> None:
    # it overrides generate and inherits generate_columns: the columns would bypass its answers
    class Shouting(ScriptedEngine):
        def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
            out = super().generate(requests)
            for g in out:
                g.text = (g.text or "").upper()
            return out

    batch = SampleBatch(
        [[{"role": "user", "content": "hello there"}]], [SamplingParams()], [0, 0], [0, 0], [1, 2]
    )
    shouted = generate_samples(Shouting("s"), batch)["response"].to_pylist()
    plain = generate_samples(ScriptedEngine("s"), batch)["response"].to_pylist()
    assert shouted == [t.upper() for t in plain] and shouted != plain
