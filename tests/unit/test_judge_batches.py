"""A judge's requests go to its engine in token-bounded calls, in order, with progress notes."""

from __future__ import annotations

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.registry import get_engine
from prefmill.progress import NullReporter, use_reporter
from prefmill.tasks.evaluation.judge_batches import generate_in_budget, request_tokens, token_batches


def _req(chars: int, seed: int, new: int = 50) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": "x" * chars}], SamplingParams(0.0, 1.0, new), seed)


class _Notes(NullReporter):
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.tokens = 0

    def advance(self, stage: str, *, units: int = 0, tokens: int = 0) -> None:
        self.tokens += tokens

    def note(self, stage: str, text: str) -> None:
        self.notes.append(text)


def test_batches_stay_within_the_budget_and_keep_order() -> None:
    requests = [_req(300 * (i % 4), i) for i in range(20)]  # long and short prompts mixed
    batches = list(token_batches(requests, budget=600))
    assert [i for b in batches for i in b] == list(range(20))
    assert len(batches) > 4
    assert all(sum(request_tokens(requests[i]) for i in b) <= 600 or len(b) == 1 for b in batches)
    # a request over the budget is a batch of its own
    assert list(token_batches([_req(9000, 0), _req(3, 1)], budget=600)) == [range(0, 1), range(1, 2)]


class _Counting:
    """The scripted engine, counting the requests of each call."""

    def __init__(self) -> None:
        self.inner = get_engine("scripted:echo", batch_size=8)
        self.name = self.inner.name
        self.calls: list[int] = []

    def generate(self, requests, progress=None):  # type: ignore[no-untyped-def]
        self.calls.append(len(requests))
        return self.inner.generate(requests)


def test_same_replies_as_one_call_with_progress_notes() -> None:
    requests = [_req(600 * (i % 3), i, new=20) for i in range(12)]
    engine = _Counting()
    notes = _Notes()
    with use_reporter(notes):
        got = generate_in_budget(engine, requests, budget=500)
    assert [g.text for g in got] == [g.text for g in engine.inner.generate(requests)]
    assert len(engine.calls) > 1 and sum(engine.calls) == 12
    assert notes.tokens == sum(g.n_tokens for g in got)
    assert notes.notes[-1].startswith("judge: 12/12 requests") and "ETA" in notes.notes[0]


def test_a_judge_shard_advances_its_units_per_batch() -> None:
    """Inside ``portions`` (the judge shard), each token-bounded call moves the stage's units."""
    from prefmill.progress import portions

    requests = [_req(600 * (i % 3), i, new=20) for i in range(12)]
    engine, steps = _Counting(), []
    with portions(steps.append, 30, parts=2):  # 30 candidates, two judge models
        generate_in_budget(engine, requests, budget=500)
        half = sum(steps)
        generate_in_budget(engine, requests, budget=500)
    assert len(steps) > 2 and all(s > 0 for s in steps)  # several advances, not one per shard
    assert half == 15 and sum(steps) == 30
    generate_in_budget(engine, requests, budget=500)  # outside a shard: nothing to advance
    assert sum(steps) == 30
