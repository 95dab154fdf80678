"""The transformers engine on the real embedded model (SmolLM2-135M-Instruct), plus its sampler.

The model tests are marked slow; together they take well under a minute on 2 CPU cores once the
GGUF conversion is cached (the first run ever adds ~25 s to convert it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from prefmill.engines import model_cache
from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.registry import clear_engines, get_engine
from prefmill.engines.transformers.engine import SeededSampler, TransformersEngine
from prefmill.storage.schemas import MESSAGE, schema_for
from prefmill.tasks.synthesis import synthesize

# ---------------------------------------------------------------------------- sampler (no model)

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])


def _expected(temperature: float, top_p: float) -> torch.Tensor:
    q = torch.softmax(LOGITS.double() / temperature, -1)
    sorted_q, order = q.sort(descending=True)
    keep = (sorted_q.cumsum(0) - sorted_q) < top_p
    out = torch.zeros_like(q)
    out[order[keep]] = sorted_q[keep]
    return out / out.sum()


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, 1.0), (0.7, 0.8), (1.5, 0.95)])
def test_sampler_follows_the_tempered_nucleus(temperature: float, top_p: float) -> None:
    n = 20_000
    sampler = SeededSampler(range(n), [temperature] * n, [top_p] * n, {99})
    freq = torch.bincount(sampler.pick(LOGITS.expand(n, -1).clone()), minlength=6).double() / n
    expected = _expected(temperature, top_p)
    assert torch.allclose(freq, expected, atol=0.015), (freq, expected)
    assert (freq[expected == 0] == 0).all()  # never outside the nucleus


def test_sampler_wide_nucleus_over_the_full_vocabulary() -> None:
    torch.manual_seed(0)
    logits = torch.randn(49152) * 0.3  # nearly flat: the nucleus holds ~90% of the vocabulary
    sampler = SeededSampler(range(128), [1.0] * 128, [0.9] * 128, {99})
    picked = sampler.pick(logits.expand(128, -1).clone())
    assert picked.unique().numel() > 120
    assert (picked >= 0).all() and (picked < 49152).all()


def test_sampler_rows_do_not_depend_on_their_neighbours() -> None:
    torch.manual_seed(1)
    logits = torch.randn(5, 1000) * 2
    seeds, temps, top_ps = [11, 12, 13, 14, 15], [0.0, 0.7, 1.0, 1.3, 0.9], [1.0, 0.9, 1.0, 0.5, 0.95]
    together = SeededSampler(seeds, temps, top_ps, {0})
    picks = torch.stack([together.pick(logits) for _ in range(10)], dim=1)
    for row in range(5):
        alone = SeededSampler([seeds[row]], [temps[row]], [top_ps[row]], {0})
        assert torch.equal(
            torch.stack([alone.pick(logits[row : row + 1]) for _ in range(10)], dim=1)[0], picks[row]
        )
    assert (picks[0] == logits[0].argmax()).all()  # temperature 0 is greedy


def test_sampler_scores_force_the_pick_and_logprob_stops_after_eos() -> None:
    eos = 3
    logits = torch.tensor([[0.0, 1.0, 2.0, 5.0], [5.0, 1.0, 2.0, 0.0]])
    sampler = SeededSampler([1, 2], [0.0, 0.0], [1.0, 1.0], {eos})
    prompt = torch.zeros(2, 4, dtype=torch.long)
    out = sampler(prompt, logits)
    assert out.argmax(-1).tolist() == [3, 0]
    assert torch.isinf(out).sum() == 6  # -inf everywhere except the chosen token
    first = torch.log_softmax(logits, -1)[[0, 1], [3, 0]].double()
    assert torch.allclose(sampler.logprob, first)
    sampler(torch.cat([prompt, torch.tensor([[3], [0]])], dim=1), logits)  # row 0 has finished
    assert torch.allclose(sampler.logprob, torch.stack([first[0], 2 * first[1]]))


# ---------------------------------------------------------------------------- the real model

QUESTIONS = ["What is the capital of France?", "Name a primary color.", "What is 2 + 2?"]


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def engine() -> TransformersEngine:
    return TransformersEngine("smollm2", batch_size=8)


@pytest.mark.slow
def test_conversion_is_cached_and_loads_as_a_plain_model() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_cache.embedded_model_dir()
    marker = folder / model_cache.MARKER
    stamp = marker.stat().st_mtime_ns
    started = time.perf_counter()
    assert model_cache.embedded_model_dir() == folder
    assert time.perf_counter() - started < 0.5  # a no-op: no conversion
    assert marker.stat().st_mtime_ns == stamp
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert getattr(model.config, "quantization_config", None) is None
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.chat_template and tok.eos_token == tok.pad_token == "<|im_end|>"


@pytest.mark.slow
def test_two_processes_converting_at_once_share_one_valid_folder(tmp_path: Path) -> None:
    """A real GGUF conversion into a fresh cache, raced by two processes (~25 s on 2 cores)."""
    code = "from prefmill.engines.model_cache import embedded_model_dir; print(embedded_model_dir())"
    env = {**os.environ, "PREFMILL_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode()[-2000:] for _, err in outputs]
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    assert {out.decode().strip() for out, _ in outputs} == {str(folder)}
    assert (folder / model_cache.MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert sorted(p.name for p in folder.parent.iterdir() if not p.name.endswith(".lock")) == [folder.name]


@pytest.mark.slow
def test_synthesis_is_deterministic_and_sane(engine: TransformersEngine) -> None:
    prompts = pa.table(
        {
            "prompt_id": [f"q{i}" for i in range(3)],
            "messages": pa.array([_messages(q) for q in QUESTIONS], pa.list_(MESSAGE)),
        }
    )
    args = {"k": 2, "temperatures": [0.7, 1.0], "top_p": 0.95, "max_new_tokens": 12, "seed": 3}
    first = synthesize(prompts, engine, **args)
    second = synthesize(prompts, engine, **args)
    assert first.schema.equals(schema_for("candidates"))
    assert first.num_rows == 6
    stable = [c for c in first.column_names if c != "latency_ms"]
    assert first.select(stable).equals(second.select(stable))
    for row in first.to_pylist():
        assert row["error"] is None and row["generator"] == "transformers:smollm2"
        assert 1 <= row["n_tokens"] <= 12
        assert row["finish_reason"] in ("stop", "length")
        assert row["finish_reason"] == "stop" or row["n_tokens"] == 12
        assert row["logprob"] < 0 and math.isfinite(row["logprob"])
        assert row["prompt_tokens"] > 5 and row["latency_ms"] > 0


@pytest.mark.slow
def test_temperature_zero_is_greedy_and_score_matches_its_logprob(engine: TransformersEngine) -> None:
    greedy = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=24)
    requests = [GenerationRequest(_messages(q), greedy, seed=s) for q in QUESTIONS for s in (1, 2)]
    gens = engine.generate(requests)
    for a, b in zip(gens[::2], gens[1::2], strict=True):
        assert a.text == b.text and a.logprob == pytest.approx(b.logprob, rel=1e-4)
    # score() covers the response and its end-of-turn token, so it matches generations that stopped.
    stopped = [(r, g) for r, g in zip(requests, gens, strict=True) if g.finish_reason == "stop"]
    assert stopped, [g.text for g in gens]
    scores = engine.score([(r.messages, g.text) for r, g in stopped])
    for (_, g), s in zip(stopped, scores, strict=True):
        assert s == pytest.approx(g.logprob, rel=1e-3), g.text


@pytest.mark.slow
def test_seeded_sample_does_not_depend_on_its_batch(engine: TransformersEngine) -> None:
    sampling = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=16)
    target = GenerationRequest(_messages("Write one sentence about the sea."), sampling, seed=1234)
    others = [
        GenerationRequest(_messages(q * (i + 1)), SamplingParams(0.5 + 0.2 * i, 0.9, 16), seed=i)
        for i, q in enumerate(["Hi.", "Tell me a long story about a dragon and a knight. ", "Why?"])
    ]
    alone = engine.generate([target])[0]
    # Padding changes the logits only by float noise (~1e-6); the inverse-CDF sampler only flips a
    # token when its uniform draw falls within that noise of a boundary, so the text is stable.
    mixed = engine.generate([others[0], target, others[1], others[2]])[1]
    assert mixed.text == alone.text
    assert mixed.n_tokens == alone.n_tokens
    assert mixed.logprob == pytest.approx(alone.logprob, rel=1e-4)


@pytest.mark.slow
def test_too_long_prompt_is_an_error_row(engine: TransformersEngine) -> None:
    short = GenerationRequest(_messages("Hi"), SamplingParams(0.0, 1.0, 4), seed=0)
    long = GenerationRequest(_messages("word " * 9000), SamplingParams(0.0, 1.0, 4), seed=0)
    bad = GenerationRequest(_messages("Hi"), SamplingParams(-1.0, 1.0, 4), seed=0)
    seen: list[int] = []
    gens = engine.generate([long, short, bad], progress=seen.append)
    assert gens[0].text is None and "exceeds the model context of 8192 tokens" in gens[0].error
    assert gens[0].prompt_tokens > 8192
    assert gens[1].error is None and gens[1].text
    assert gens[2].error and "temperature" in gens[2].error
    assert sum(seen) == 3
    assert math.isnan(engine.score([(_messages("word " * 9000), "x")])[0])


@pytest.mark.slow
def test_registry_loads_once_and_counts_calls() -> None:
    clear_engines()
    try:
        engine = get_engine("transformers:smollm2", batch_size=4)
        assert get_engine("transformers:smollm2", batch_size=4) is engine
        assert (engine.calls, engine.requests_served) == (0, 0)
        engine.generate([GenerationRequest(_messages("Hi"), SamplingParams(0.0, 1.0, 2), seed=0)] * 3)
        assert (engine.calls, engine.requests_served) == (1, 3)
        assert engine.name == "transformers:smollm2" and engine.model == "SmolLM2-135M-Instruct"
    finally:
        clear_engines()


VERDICT = {
    "type": "object",
    "properties": {
        "better": {"type": "string", "enum": ["A", "B", "tie"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "rationale": {"type": "string", "maxLength": 60},
    },
    "required": ["better", "score", "rationale"],
    "additionalProperties": False,
}


@pytest.mark.slow
def test_response_format_constrains_the_reply_to_its_json_schema(engine: TransformersEngine) -> None:
    import jsonschema

    ask = _messages("Which is better for 'What is 2+3?': A says 5, B says 7?")
    structured = [
        GenerationRequest(ask, SamplingParams(t, 0.95, 40), seed=s, response_format=VERDICT)
        for t in (0.0, 1.5)
        for s in (1, 2)
    ]
    free = GenerationRequest(ask, SamplingParams(0.0, 1.0, 20), seed=1)
    alone = engine.generate([free])[0]
    gens = engine.generate([*structured, free])
    for g in gens[:-1]:  # hot sampling too: every reply is complete JSON the schema accepts
        assert g.error is None and g.finish_reason == "stop", g.text
        jsonschema.validate(json.loads(g.text), VERDICT)
        assert g.logprob is not None and g.logprob < 0
    # the model left to itself does not write this JSON; a free row shares the batch unaffected
    assert gens[-1].text == alone.text
    with pytest.raises(ValueError):
        jsonschema.validate(json.loads(alone.text), VERDICT)
    # seeds still decide the text
    again = engine.generate([structured[3]])
    assert again[0].text == gens[3].text
    bad = GenerationRequest(ask, SamplingParams(0.0, 1.0, 8), 1, {"$ref": "#/missing"})
    out = engine.generate([bad, free])
    assert out[0].text is None and "response_format is not a usable JSON schema" in out[0].error
    assert out[1].text == alone.text


@contextlib.contextmanager
def _deprecations() -> Iterator[list[str]]:
    """Deprecation messages raised inside the block: FutureWarnings and transformers' own log lines
    (``warning_once`` remembers a message per process, so its memory is cleared first)."""
    from transformers.utils import logging as hf_logging

    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "deprecated" in record.getMessage():
                said.append(record.getMessage())

    handler, hf_logger = Keep(), logging.getLogger("transformers")
    hf_logging.warning_once.cache_clear()
    hf_logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield said
        said.extend(str(w.message) for w in caught if issubclass(w.category, FutureWarning))
    finally:
        hf_logger.removeHandler(handler)


@pytest.mark.slow
def test_samples_of_a_prompt_share_its_kv_cache(engine: TransformersEngine) -> None:
    sampling = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12)
    requests = [GenerationRequest(_messages(q), sampling, seed=s) for q in QUESTIONS[:2] for s in (1, 2, 3)]
    requests.append(GenerationRequest(_messages("Hi."), sampling, seed=9))  # a prompt of its own
    before = engine.prefill_rows_saved
    with _deprecations() as said:
        shared = engine.generate(requests)
    assert said == []  # the cache goes to generate under the name this transformers wants
    assert engine.prefill_rows_saved - before == 4  # 7 rows, 3 distinct prompts: 4 prompt passes saved
    plain = TransformersEngine("smollm2", batch_size=8, share_prefix=False)
    unshared = plain.generate(requests)
    assert plain.prefill_rows_saved == 0
    assert [g.text for g in shared] == [g.text for g in unshared]
    assert [g.n_tokens for g in shared] == [g.n_tokens for g in unshared]
    for a, b in zip(shared, unshared, strict=True):
        assert a.logprob == pytest.approx(b.logprob, rel=1e-4)
    assert len({g.text for g in shared[:3]}) > 1  # the samples of one prompt still differ


@pytest.mark.slow
def test_calls_from_several_shards_at_once_share_batches_and_keep_their_texts(
    engine: TransformersEngine,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sampling = SamplingParams(temperature=0.9, top_p=0.95, max_new_tokens=6)
    shards = [
        [
            GenerationRequest(_messages(f"Name a fruit ({s}, {i})."), sampling, seed=10 * s + i)
            for i in range(2)
        ]
        for s in range(4)
    ]
    alone = [[g.text for g in engine.generate(reqs)] for reqs in shards]  # one shard at a time
    calls = engine.calls
    with ThreadPoolExecutor(4) as pool:  # four shards in flight: batches of up to 8 across them
        together = [[g.text for g in rows] for rows in pool.map(engine.generate, shards)]
    assert together == alone
    assert engine.calls - calls < 4  # fewer engine batches than shards


@pytest.mark.slow
def test_an_assistant_prefix_is_continued_and_its_kv_shared(engine: TransformersEngine) -> None:
    assert engine.supports_assistant_prefix
    greedy = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=24)
    whole = engine.generate([GenerationRequest(_messages(QUESTIONS[0]), greedy, seed=0)])[0].text
    assert whole is not None and " " in whole
    prefix = whole[: whole.index(" ", len(whole) // 3)]  # cut before a space: a token boundary
    cont = engine.generate(
        [GenerationRequest(_messages(QUESTIONS[0]), greedy, seed=0, assistant_prefix=prefix)]
    )[0]
    assert cont.error is None and cont.text is not None
    # the continuation only, its leading space kept: prefix + text is the greedy reply again
    assert (prefix + cont.text).startswith(whole[: len(prefix) + 8]), (prefix, cont.text)
    assert not cont.text.startswith(prefix)
    sampling = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=8)
    rollouts = [
        GenerationRequest(_messages(QUESTIONS[0]), sampling, seed=s, assistant_prefix=prefix)
        for s in range(4)
    ]
    before = engine.prefill_rows_saved
    out = engine.generate(rollouts)
    assert engine.prefill_rows_saved - before == 3  # 4 continuations of one prefix: one prefill
    assert all(g.error is None and g.text is not None for g in out)
