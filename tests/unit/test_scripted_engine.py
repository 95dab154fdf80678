"""The scripted engine: deterministic replies at once, through the engine registry."""

from __future__ import annotations

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.registry import get_engine


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
