"""The openai engine against a fault-injecting OpenAI-compatible server on 127.0.0.1 (no paid API)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyarrow as pa
import pytest
from fault_server import FaultServer
from tenacity import RetryCallState

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.openai.engine import OpenAIEngine
from prefmill.engines.openai.limiter import AimdLimiter
from prefmill.engines.openai.transport import RequestFailed, retry_after, retry_after_seconds
from prefmill.engines.registry import clear_engines, get_engine
from prefmill.errors import EngineError
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.synthesis import synthesize

SAMPLING = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=16)
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}


def req(text: str, seed: int = 0, sampling: SamplingParams = SAMPLING) -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": text}], sampling, seed)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s


def test_answers_in_request_order_with_usage_latency_and_logprobs(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, **FAST)
    out = engine.generate([req("ok:a", 1), req("ok:bb", 2), req("ok:c", 3)])
    assert [g.text for g in out] == ["echo a", "echo bb", "echo c"]
    assert all(g.error is None and g.finish_reason == "stop" for g in out)
    assert [g.n_tokens for g in out] == [2, 2, 2]
    assert out[0].prompt_tokens == 4  # one word + 3
    assert out[0].logprob == pytest.approx(-1.0)  # two tokens at -0.5
    assert all(g.latency_ms > 0 and g.attempts == 1 for g in out)
    assert out[0].cost_usd is None  # no price configured
    sent = sorted(server.bodies, key=lambda b: b["seed"])
    assert [b["seed"] for b in sent] == [1, 2, 3]  # one request per sample, each with its own seed
    assert sent[0]["temperature"] == 0.7 and sent[0]["top_p"] == 0.9 and sent[0]["max_tokens"] == 16
    assert "n" not in sent[0] and sent[0]["model"] == "m"


@pytest.mark.parametrize("fault", ["429", "500", "garbage", "truncated", "empty"])
def test_transient_faults_are_retried(server: FaultServer, fault: str) -> None:
    engine = OpenAIEngine("m", server.url, max_retries=3, **FAST)
    out = engine.generate([req(f"{fault}:2:x", 7), req("ok:y", 8)])
    assert out[0].error is None, out[0].error
    assert out[0].text == "echo x"
    assert out[0].attempts == 3
    assert server.attempts(f"{fault}:2:x") == 3
    assert out[1].text == "echo y" and out[1].attempts == 1
    assert engine.stats.retries == 2


def test_a_hanging_request_times_out_and_is_retried() -> None:
    with FaultServer(hang_seconds=3.0) as server:
        engine = OpenAIEngine("m", server.url, max_retries=2, backoff=0.01, timeout=0.5)
        started = time.perf_counter()
        out = engine.generate([req("hang:1:z", 1), req("ok:w", 2)])
        took = time.perf_counter() - started
    assert out[0].text == "echo z" and out[0].attempts == 2
    assert out[1].text == "echo w"
    assert took < 2.5  # did not wait for the hanging answer
    assert engine.stats.retry_reasons.get("timed out (ReadTimeout)") == 1


def test_permanent_failures_become_error_rows_and_the_rest_is_kept(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, max_retries=2, **FAST)
    out = engine.generate([req("ok:a", 1), req("dead:b", 2), req("bad:c", 3), req("ok:d", 4)])
    assert [g.text for g in out] == ["echo a", None, None, "echo d"]
    assert out[1].error is not None and "HTTP 500" in out[1].error and "after 3 attempts" in out[1].error
    assert server.attempts("dead:b") == 3  # first attempt + max_retries
    assert out[2].error is not None and "HTTP 400" in out[2].error and "unknown field" in out[2].error
    assert server.attempts("bad:c") == 1  # a 400 is not retried
    assert engine.stats.failed == 2
    assert engine.stats.retry_reasons == {"HTTP 500": 3, "HTTP 400": 1}


def test_synthesize_keeps_the_shard_when_one_prompt_fails(server: FaultServer) -> None:
    prompts = pa.table(
        {
            "prompt_id": ["p1", "p2", "p3"],
            "messages": pa.array(
                [[{"role": "user", "content": t}] for t in ("ok:one", "dead:two", "500:1:three")],
                pa.list_(MESSAGE),
            ),
        }
    )
    engine = OpenAIEngine("m", server.url, max_retries=1, **FAST)
    table = synthesize(prompts, engine, k=2, temperatures=[0.7], top_p=0.9, max_new_tokens=8, seed=3)
    rows = table.to_pylist()
    assert len(rows) == 6
    by_prompt = {(r["prompt_id"], r["sample_index"]): r for r in rows}
    assert by_prompt[("p1", 0)]["response"] == "echo one" and by_prompt[("p1", 0)]["error"] is None
    assert by_prompt[("p3", 1)]["response"] == "echo three"  # retried once, then fine
    for i in (0, 1):
        assert by_prompt[("p2", i)]["response"] is None
        assert "HTTP 500" in by_prompt[("p2", i)]["error"]
    assert all(r["generator"] == f"openai:m@{server.url}" for r in rows)


def test_retry_after_is_honoured() -> None:
    with FaultServer(retry_after="0.6") as server:
        engine = OpenAIEngine("m", server.url, max_retries=2, backoff=0.0, max_backoff=5.0)
        out = engine.generate([req("429:1:x", 1)])
        times = server.times["429:1:x|1"]
    assert out[0].text == "echo x"
    assert times[1] - times[0] >= 0.6


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    engine = OpenAIEngine("m", "http://127.0.0.1:1/v1", backoff=0.5, max_backoff=4.0)

    def wait(attempt: int, exc: BaseException) -> float:
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        state.set_exception((type(exc), exc, None))
        return engine.transport.wait(state)

    plain = RequestFailed("HTTP 500", retryable=True)
    for attempt in (1, 2, 3, 6):
        waits = [wait(attempt, plain) for _ in range(200)]
        cap = min(4.0, 0.5 * 2 ** (attempt - 1))
        assert min(waits) >= 0 and max(waits) <= cap + 1e-9
        assert max(waits) > 0.6 * cap  # full jitter spreads over the whole range
        assert len({round(w, 6) for w in waits}) > 150
    told = RequestFailed("HTTP 429", retryable=True, retry_after=2.0)
    assert all(2.0 <= wait(1, told) <= 2.0 + 0.05 + 1e-9 for _ in range(50))
    capped = RequestFailed("HTTP 429", retryable=True, retry_after=600.0)
    assert wait(1, capped) <= 4.0 + 0.05 + 1e-9


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_retry_after_ms_is_preferred_to_retry_after() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25  # OpenAI's finer header
    assert retry_after({"retry-after-ms": "x", "retry-after": "3"}) == 3.0
    assert retry_after({}) is None


def test_requests_are_sent_by_the_official_openai_client(
    server: FaultServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import openai

    monkeypatch.setenv("PREFMILL_TEST_KEY", "sk-secret-456")
    caplog.set_level(logging.DEBUG)  # the client's and its HTTP library's debug logs too
    engine = OpenAIEngine("m", server.url, api_key_env="PREFMILL_TEST_KEY", max_retries=1, **FAST)
    out = engine.generate([req("ok:a", 1), req("dead:b", 2)])
    assert out[0].text == "echo a" and out[1].error is not None
    sent = server.headers[0]
    assert sent["User-Agent"] == f"AsyncOpenAI/Python {openai.__version__}"
    assert sent["X-Stainless-Retry-Count"] == "0"  # the client never retries: prefmill's loop does
    assert server.attempts("dead:b") == 2  # one retry, as max_retries says, not the client's own
    assert "HTTP Request: POST" in caplog.text  # the logs were captured
    assert "sk-secret" not in out[1].error and "sk-secret" not in caplog.text
    assert "sk-secret" not in repr(engine.__dict__)


def _overload(min_concurrency: int) -> tuple[OpenAIEngine, FaultServer]:
    with FaultServer(capacity=4, service_seconds=0.03) as server:
        engine = OpenAIEngine(
            "m", server.url, max_concurrency=16, min_concurrency=min_concurrency, max_retries=50, **FAST
        )
        out = engine.generate([req(f"ok:{i}", i) for i in range(64)])
    assert all(g.error is None for g in out)
    return engine, server


def test_adaptive_concurrency_backs_off_on_429() -> None:
    adaptive, server = _overload(min_concurrency=1)
    fixed, fixed_server = _overload(min_concurrency=16)  # the floor equals the ceiling: no back-off
    limiter = adaptive.last_limiter
    assert limiter is not None and limiter.decreases >= 1
    assert min(limiter.limits) <= 8
    assert limiter.peak_in_flight == 16  # it started at the ceiling
    assert fixed.last_limiter is not None and fixed.last_limiter.limits == [16.0]
    assert fixed.last_limiter.decreases == 0
    assert adaptive.stats.throttled == server.status_counts[429] > 0
    assert fixed.stats.throttled == fixed_server.status_counts[429] > 0


def test_aimd_limiter_halves_once_per_window_and_grows_back() -> None:
    import asyncio

    async def scenario() -> AimdLimiter:
        lim = AimdLimiter(8, 1)
        epochs = [await lim.acquire() for _ in range(8)]
        for e in epochs[:4]:  # four 429s from the same window: one halving
            await lim.release(e, ok=False, throttled=True)
        assert lim.limit == 4
        for e in epochs[4:]:  # successes of the same window grow it by 1/limit each
            await lim.release(e, ok=True, throttled=False)
        assert 4.8 < lim.limit < 5
        e = await lim.acquire()
        await lim.release(e, ok=False, throttled=True)  # a new window: halves again
        assert 2.4 < lim.limit < 2.5
        for _ in range(40):
            e = await lim.acquire()
            await lim.release(e, ok=True, throttled=False)
        return lim

    lim = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert lim.limit == 8  # additive increase back to the ceiling
    assert lim.decreases == 2


def test_aimd_limiter_hands_a_cancelled_waiters_slot_on() -> None:
    import asyncio

    async def scenario() -> None:
        lim = AimdLimiter(2, 2)
        held = [await lim.acquire() for _ in range(2)]
        waiters = [asyncio.create_task(lim.acquire()) for _ in range(3)]
        await asyncio.sleep(0.01)
        await lim.release(held[0], ok=True, throttled=False)  # one free slot: one waiter is woken
        waiters[0].cancel()  # ... and cancelled before it runs: the slot goes to the next one
        await asyncio.sleep(0.01)
        assert waiters[0].cancelled() and waiters[1].done() and not waiters[2].done()
        assert lim.in_flight == 2
        await lim.release(held[1], ok=True, throttled=False)
        await asyncio.wait_for(waiters[2], 1)
        for w in waiters[1:]:  # leave the process's in-flight meter as it was
            await lim.release(w.result(), ok=True, throttled=False)
        assert lim.in_flight == 0

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_n_samples_sharing_a_prompt_go_in_one_request(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, max_n=4, input_per_mtok=1.0, output_per_mtok=2.0, **FAST)
    requests = [req("ok:q", seed) for seed in (10, 11, 12, 13, 14)] + [req("ok:r", 20)]
    out = engine.generate(requests)
    assert [g.text for g in out] == [f"echo q #{i}" for i in range(4)] + ["echo q", "echo r"]
    ns = sorted(int(b.get("n", 1)) for b in server.bodies)
    assert ns == [1, 1, 4]
    grouped = next(b for b in server.bodies if b.get("n") == 4)
    assert grouped["seed"] == 10  # the group's first seed
    # the prompt (4 tokens) is billed once per request, split over the group's rows
    assert sum(g.cost_usd for g in out[:4]) == pytest.approx((4 * 1.0 + 3 * 4 * 2.0) / 1e6)
    assert out[5].cost_usd == pytest.approx((4 * 1.0 + 2 * 2.0) / 1e6)


def test_api_key_from_the_environment_only(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFMILL_TEST_KEY", "sk-secret-123")
    engine = OpenAIEngine("m", server.url, api_key_env="PREFMILL_TEST_KEY", **FAST)
    engine.generate([req("ok:a")])
    assert server.headers[0]["Authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in repr(engine) and "sk-secret" not in engine.name
    monkeypatch.delenv("PREFMILL_TEST_KEY")
    with pytest.raises(EngineError, match="PREFMILL_TEST_KEY"):
        OpenAIEngine("m", server.url, api_key_env="PREFMILL_TEST_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    OpenAIEngine("m", server.url).generate([req("ok:b")])  # default variable unset: no key sent
    assert "Authorization" not in server.headers[1]


def test_unreachable_server_gives_error_rows_not_a_crash() -> None:
    engine = OpenAIEngine("m", "http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, connect_timeout=1)
    out = engine.generate([req("ok:a"), req("ok:b", 1)])
    assert all(g.text is None and "connection failed" in (g.error or "") for g in out)


def test_invalid_sampling_is_an_error_row_without_a_request(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, **FAST)
    out = engine.generate([req("ok:a", sampling=SamplingParams(top_p=0.0)), req("ok:b")])
    assert out[0].error is not None and "top_p" in out[0].error
    assert out[1].text == "echo b" and len(server.bodies) == 1


def test_score_without_prompt_logprobs_is_a_clear_error(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, **FAST)
    with pytest.raises(EngineError, match="prompt_logprobs"):
        engine.score([([{"role": "user", "content": "ok:a"}], "echo a")])


def test_spec_options_and_recipe_prices_reach_the_engine(server: FaultServer) -> None:
    clear_engines()
    try:
        engine = get_engine(
            f"openai:m@{server.url}?max_concurrency=3&max_retries=0",
            prices={"m": {"input_per_mtok": 0.5, "output_per_mtok": 1.5}},
            batch_size=64,
        )
        assert isinstance(engine, OpenAIEngine)
        assert (engine.max_concurrency, engine.max_retries) == (3, 0)
        assert (engine.input_per_mtok, engine.output_per_mtok) == (0.5, 1.5)
        out = engine.generate([req("ok:a")])
        assert out[0].cost_usd == pytest.approx((4 * 0.5 + 2 * 1.5) / 1e6)
        with pytest.raises(EngineError, match="unknown option"):
            get_engine(f"openai:m@{server.url}?concurrency=3")
        with pytest.raises(EngineError, match="http://"):
            get_engine("openai:m@localhost:8000/v1")
    finally:
        clear_engines()


def test_generate_works_inside_a_running_event_loop(server: FaultServer) -> None:
    import asyncio

    engine = OpenAIEngine("m", server.url, **FAST)

    async def inside() -> list[str | None]:
        return [g.text for g in engine.generate([req("ok:a")])]

    assert asyncio.run(inside()) == ["echo a"]


def test_response_format_is_sent_as_a_strict_json_schema(server: FaultServer) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    structured = GenerationRequest([{"role": "user", "content": "ok:a"}], SAMPLING, 1, schema)
    engine = OpenAIEngine("m", server.url, max_n=4, **FAST)
    assert engine.supports_response_format
    # the same prompt and sampling with and without a schema never share one n>1 request
    out = engine.generate([structured, req("ok:a", 2), structured])
    assert all(g.error is None for g in out)
    by_n = sorted(server.bodies, key=lambda b: b.get("n", 1))
    assert "response_format" not in by_n[0] and by_n[1]["n"] == 2
    assert by_n[1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }
    server.bodies.clear()
    clear_engines()
    try:  # a server without structured output: the option turns it off, the schema is not sent
        off = get_engine(f"openai:m@{server.url}?structured_output=false")
        assert not off.supports_response_format
        assert off.generate([structured])[0].error is None
        assert "response_format" not in server.bodies[0]
    finally:
        clear_engines()


def test_an_assistant_prefix_is_continued_as_the_final_message(server: FaultServer) -> None:
    engine = OpenAIEngine("m", server.url, max_n=4, **FAST)
    assert engine.supports_assistant_prefix
    cont = GenerationRequest(
        [{"role": "user", "content": "ok:a"}], SAMPLING, 1, assistant_prefix="Step 1: 2+2=4\n"
    )
    out = engine.generate([cont, cont, req("ok:a", 1)])
    # the continuation only, its leading space kept; plain requests never share one with a prefix
    assert [g.text for g in out] == [" then echo a #0", " then echo a #1", "echo a"]
    by_n = sorted(server.bodies, key=lambda b: b.get("n", 1))
    plain, continued = by_n
    assert "continue_final_message" not in plain and plain["messages"][-1]["role"] == "user"
    assert continued["n"] == 2 and continued["continue_final_message"] is True
    assert continued["add_generation_prompt"] is False
    assert continued["messages"][-1] == {"role": "assistant", "content": "Step 1: 2+2=4\n"}
