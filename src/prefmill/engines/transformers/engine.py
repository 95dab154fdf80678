"""In-process Hugging Face transformers engine (the embedded default, runs on CPU).

Sampling is done by ``SeededSampler``, a logits processor with one ``torch.Generator`` per row, so a
request's text depends on its own seed and prompt, not on which other requests share its batch.
A request's ``response_format`` (a JSON schema) constrains its tokens through llguidance
(``prefmill.engines.transformers.constrained``): structured output.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from prefmill.engines.base import (
    Generation,
    GenerationRequest,
    Messages,
    Progress,
    SamplingParams,
    check_sampling,
    reply_text,
)
from prefmill.engines.batching import Coalescer
from prefmill.engines.model_cache import (
    EMBEDDED_FULL_NAME,
    EMBEDDED_NAME,
    hf_quiet,
    is_embedded_name,
    resolve_model,
)
from prefmill.engines.transformers.constrained import Constraints, Grammars, SchemaError
from prefmill.errors import EngineError

logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Upper bound on the logits one ``score`` forward pass keeps (rows x kept positions x vocab floats).
_SCORE_LOGITS_BUDGET = 128 * 1024 * 1024
#: Top-k sizes searched for the top-p nucleus before falling back to a full sort of the vocabulary.
_NUCLEUS_STAGES = (256, 4096)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def cache_key(output: object) -> str:
    """The key of the KV cache in a forward pass's output, which is also the keyword ``generate``
    takes it under: ``cache`` since transformers 5 (where ``past_key_values`` is deprecated and warns),
    ``past_key_values`` in the 4.x releases the project still supports."""
    return "cache" if "cache" in output else "past_key_values"  # type: ignore[operator]


class SeededSampler(LogitsProcessor):
    """Per-row seeded temperature + top-p sampling inside HF greedy ``generate``.

    Each call draws one uniform number per row from that row's own generator and picks the token by
    inverse CDF over the nucleus in vocabulary order (robust to tiny numerical noise from padding).
    It accumulates the chosen token's log-prob under the untempered model distribution for rows not
    yet finished, and returns scores that are ``-inf`` except at the chosen token, so argmax picks it.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        temperatures: Sequence[float],
        top_ps: Sequence[float],
        eos_ids: set[int],
        constraints: Constraints | None = None,
    ) -> None:
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.temperature = torch.tensor(list(temperatures), dtype=torch.float32)
        self.top_p = torch.tensor(list(top_ps), dtype=torch.float32)
        self.eos_ids = torch.tensor(sorted(eos_ids), dtype=torch.long)
        n = len(self.generators)
        self.finished = torch.zeros(n, dtype=torch.bool)
        self.logprob = torch.zeros(n, dtype=torch.float64)
        self.constraints = constraints  # structured output: rows whose tokens a JSON schema limits
        self._started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._started:
            self.finished |= torch.isin(input_ids[:, -1].cpu(), self.eos_ids)
        self._started = True
        logits = scores.float().cpu()
        if self.constraints is None:
            chosen = self.pick(logits)
        else:
            allowed = logits.clone()
            self.constraints.mask(allowed, ~self.finished)
            chosen = self.pick(allowed)
            self.constraints.advance(chosen, ~self.finished)
        # the log-prob is under the model's own distribution, before temperature and any schema mask
        logp = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None]).squeeze(1).double()
        self.logprob += torch.where(self.finished, torch.zeros_like(logp), logp)
        out = torch.full_like(scores, -math.inf)
        out.scatter_(1, chosen[:, None].to(scores.device), 0.0)
        return out

    def pick(self, logits: torch.Tensor) -> torch.Tensor:
        """One token per row: greedy where temperature == 0, else seeded nucleus sampling."""
        # One draw per row per step, whatever the row's state, keeps each row's stream its own.
        u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in self.generators])
        chosen = logits.argmax(dim=-1)
        rows = (self.temperature > 0).nonzero().squeeze(1)
        if rows.numel() == 0:
            return chosen
        u, top_p = u[rows], self.top_p[rows].double()
        logq = torch.log_softmax(logits[rows] / self.temperature[rows, None], dim=-1)
        picked = torch.empty(rows.numel(), dtype=torch.long)
        full = top_p >= 1  # no nucleus: the CDF runs over the whole vocabulary
        if full.any():
            q = logq[full].double().exp()
            picked[full] = self._inverse_cdf(q, torch.ones_like(q, dtype=torch.bool), u[full])
        # The nucleus is the top-m tokens: look for it among the top k for growing k, so that the
        # whole vocabulary is sorted only for rows whose nucleus is wider than the last stage.
        todo = (~full).nonzero().squeeze(1)
        vocab = logq.shape[-1]
        for k in (*(s for s in _NUCLEUS_STAGES if s < vocab), vocab):
            if todo.numel() == 0:
                break
            vals, idx = logq[todo].topk(k, dim=-1)
            probs = vals.double().exp()
            p = top_p[todo]
            done = probs.sum(dim=-1) >= p if k < vocab else torch.ones_like(p, dtype=torch.bool)
            if done.any():
                probs, idx, p = probs[done], idx[done], p[done]
                keep = (probs.cumsum(dim=-1) - probs) < p[:, None]  # the top token always stays
                order = idx.argsort(dim=-1)  # CDF in token-id order (see _inverse_cdf)
                pos = self._inverse_cdf(probs.gather(1, order), keep.gather(1, order), u[todo[done]])
                picked[todo[done]] = idx.gather(1, order).gather(1, pos[:, None]).squeeze(1)
            todo = todo[~done]
        chosen[rows] = picked
        return chosen

    @staticmethod
    def _inverse_cdf(probs: torch.Tensor, keep: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Position sampled by inverse CDF from ``probs`` restricted to ``keep``, in the given order.

        Callers pass token-id order, so tiny numerical noise in the logits changes the result only
        when ``u`` lies within that noise of a boundary, never by re-ordering near-ties.
        """
        mass = torch.where(keep, probs, torch.zeros_like(probs)).cumsum(dim=-1)
        pos = torch.searchsorted(mass, (u * mass[:, -1]).unsqueeze(1), right=True).squeeze(1)
        pos = pos.clamp_(max=mass.shape[-1] - 1)
        # float rounding at the very top of the range must not pick a token outside the nucleus
        bad = ~keep.gather(1, pos[:, None]).squeeze(1)
        if bad.any():
            pos[bad] = torch.where(keep[bad], mass[bad], -1.0).argmax(dim=-1)
        return pos


class TransformersEngine:
    """A causal LM from a local folder (or the embedded SmolLM2), loaded once per instance.

    ``batch_size`` changes speed, never the text. Default 64: on 2 CPU cores, 64 requests x 64 new
    tokens ran at ~110 / ~215 / ~250 tokens/s with batches of 8 / 32 / 64, and 128 was no faster.

    ``share_prefix`` (default on): the k samples of a prompt share its KV cache. A batch holding
    the same prompt several times runs the prompt's forward pass once per distinct prompt and copies
    the keys and values to its samples, so prefill costs what the distinct prompts cost, not k times
    that (benchmarks/prefix_sharing.py measures it). The text is the same either way, as it is for
    any batch composition (the sampler is robust to float noise). A request's ``assistant_prefix``
    is tokenized after the assistant header as part of its prompt, so the n continuations of one
    step prefix share its KV cache the same way.
    """

    supports_response_format = True
    supports_assistant_prefix = True

    def __init__(
        self,
        model: str = "smollm2",
        batch_size: int = 64,
        device: str = "cpu",
        dtype: str = "float32",
        share_prefix: bool = True,
    ) -> None:
        if batch_size < 1:
            raise EngineError(f"transformers engine: batch_size must be >= 1, got {batch_size}")
        if dtype not in _DTYPES:
            raise EngineError(
                f"transformers engine: unknown dtype '{dtype}'; use one of {', '.join(_DTYPES)}"
            )
        path = resolve_model(model)
        embedded = is_embedded_name(model)
        self.name = f"transformers:{EMBEDDED_NAME if embedded else model}"
        self.model = EMBEDDED_FULL_NAME if embedded else str(path)
        self.path: Path = path
        self.batch_size = int(batch_size)
        self.share_prefix = bool(share_prefix)
        self.prefill_rows_saved = 0  # prompt rows whose forward pass prefix sharing skipped
        self.device = torch.device(device)
        self.calls = 0
        self.requests_served = 0
        self._lock = threading.Lock()
        # concurrent calls (several shards in flight) share batches of up to batch_size requests
        self._generate_queue: Coalescer[GenerationRequest, Generation] = Coalescer(
            self._generate_locked, Generation.failed, self.batch_size
        )
        self._score_queue: Coalescer[tuple[Messages, str], float] = Coalescer(
            self._score_locked, lambda _: math.nan, self.batch_size
        )
        self._grammars: Grammars | None = None
        try:
            with hf_quiet():
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.lm = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[dtype])
        except Exception as exc:
            raise EngineError(f"cannot load model folder {path}: {_error_text(exc)}") from exc
        self.lm.to(self.device).eval()
        if not getattr(self.tokenizer, "chat_template", None):
            raise EngineError(f"model folder {path} has no chat template; use an instruct/chat model")
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise EngineError(f"model folder {path}: the tokenizer has no eos token")
        gen_eos = self.lm.generation_config.eos_token_id
        extra = gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else []
        self.eos_id: int = int(eos)
        self.eos_ids: set[int] = {self.eos_id, *(int(e) for e in extra)}
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = int(pad) if pad is not None else self.eos_id
        self.context_length: int = int(getattr(self.lm.config, "max_position_embeddings", 0) or 1 << 30)
        # The folder's own generation defaults (repetition penalty, suppressed tokens...) would bend
        # the sampler's distribution and its log-probs: this engine samples by its own rules only.
        self.lm.generation_config = GenerationConfig(
            bos_token_id=self.tokenizer.bos_token_id,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
        )

    def __repr__(self) -> str:
        return f"TransformersEngine({self.name!r}, batch_size={self.batch_size}, device={str(self.device)!r})"

    # ------------------------------------------------------------------ encoding

    def _prompt_ids(self, messages: Messages, prefix: str | None = None) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        text += prefix or ""  # a reply to continue: after the assistant header, no end-of-turn
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def _check_sampling(s: SamplingParams) -> str | None:
        return check_sampling(s)

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def grammars(self) -> Grammars:
        """llguidance's view of this tokenizer (built on the first structured request, ~0.5 s)."""
        if self._grammars is None:
            vocab = int(self.lm.get_output_embeddings().weight.shape[0])
            self._grammars = Grammars(self.tokenizer, vocab, sorted(self.eos_ids))
        return self._grammars

    # ------------------------------------------------------------------ generate

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        """One ``Generation`` per request, in order; ``progress(n)`` gets each batch's size when it ends.

        Calls from several threads at once are merged into shared batches (``Coalescer``)."""
        return self._generate_queue(requests, progress)

    def _generate_locked(self, requests: list[GenerationRequest]) -> list[Generation]:
        with self._lock:
            self.calls += 1
            self.requests_served += len(requests)
            return self._generate(requests, None)

    def _generate(self, requests: list[GenerationRequest], progress: Progress | None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[int, list[tuple[int, list[int]]]] = defaultdict(list)
        failed_early = 0
        # The k samples of a prompt share its encoding (one chat template + tokenizer call per prompt)
        # and, having the same length, sit side by side in the same batches.
        encoded: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            problem = self._check_sampling(req.sampling)
            ids: list[int] = []
            if problem is None:
                try:
                    key = json.dumps([req.messages, req.assistant_prefix], sort_keys=True)
                    if key not in encoded:
                        encoded[key] = self._prompt_ids(req.messages, req.assistant_prefix)
                    ids = encoded[key]
                except Exception as exc:
                    problem = f"cannot apply the chat template: {_error_text(exc)}"
            if problem is None and req.response_format is not None:
                try:
                    self.grammars().grammar(req.response_format)
                except SchemaError as exc:
                    problem = str(exc)
            if problem is None and len(ids) + req.sampling.max_new_tokens > self.context_length:
                problem = (
                    f"prompt has {len(ids)} tokens; with max_new_tokens={req.sampling.max_new_tokens} it "
                    f"exceeds the model context of {self.context_length} tokens; shorten the prompt or "
                    "lower max_new_tokens"
                )
            if problem is not None:
                results[i] = Generation.failed(problem, prompt_tokens=len(ids))
                failed_early += 1
                continue
            # Sampling is per row, so requests differing only in temperature/top_p/seed share batches.
            groups[req.sampling.max_new_tokens].append((i, ids))
        if failed_early and progress is not None:
            progress(failed_early)
        for max_new, members in sorted(groups.items()):
            members.sort(key=lambda m: (len(m[1]), m[0]))  # similar lengths together: less padding
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                for (i, _), gen in zip(batch, self._run_batch(requests, batch, max_new), strict=True):
                    results[i] = gen
                if progress is not None:
                    progress(len(batch))
        return [r if r is not None else Generation.failed("internal error: no result") for r in results]

    def _run_batch(
        self, requests: list[GenerationRequest], batch: list[tuple[int, list[int]]], max_new: int
    ) -> list[Generation]:
        reqs = [requests[i] for i, _ in batch]
        prompts = [ids for _, ids in batch]
        start = time.perf_counter()
        try:
            input_ids, mask = self._left_pad(prompts)
            sampler = SeededSampler(
                [r.seed for r in reqs],
                [r.sampling.temperature for r in reqs],
                [r.sampling.top_p for r in reqs],
                self.eos_ids,
                self._constraints(reqs),
            )
            with torch.inference_mode():
                shared = self._shared_prefix(prompts, input_ids, mask) if self.share_prefix else {}
                out = self.lm.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=max_new,
                    logits_processor=LogitsProcessorList([sampler]),
                    eos_token_id=sorted(self.eos_ids),
                    pad_token_id=self.pad_id,
                    **shared,
                )
            new = out[:, input_ids.shape[1] :].cpu().tolist()
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000 / len(batch)
            return [Generation.failed(_error_text(exc), prompt_tokens=len(p), latency_ms=ms) for p in prompts]
        ms = (time.perf_counter() - start) * 1000 / len(batch)
        results = []
        for row, (tokens, prompt, req) in enumerate(zip(new, prompts, reqs, strict=True)):
            end = next((j for j, t in enumerate(tokens) if t in self.eos_ids), None)
            n = len(tokens) if end is None else end + 1
            text = reply_text(
                self.tokenizer.decode(tokens[:n], skip_special_tokens=True), req.assistant_prefix
            )
            results.append(
                Generation(
                    text=text,
                    n_tokens=n,
                    prompt_tokens=len(prompt),
                    finish_reason="length" if end is None else "stop",
                    logprob=float(sampler.logprob[row]),
                    latency_ms=ms,
                    error=None,
                )
            )
        return results

    def _shared_prefix(
        self, prompts: list[list[int]], input_ids: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, object]:
        """The KV cache for ``generate`` (under ``cache_key``) when the batch repeats a prompt, else nothing.

        The distinct prompts (left-padded like the batch) run one forward pass over all but their
        last token, with the position ids ``generate`` would give them; the cache's rows are then
        copied to every row holding that prompt. ``generate`` sees a cache covering the prompt
        minus one token and feeds only the last one, which yields the first new token as usual."""
        first: dict[tuple[int, ...], int] = {}
        rows = [first.setdefault(tuple(p), len(first)) for p in prompts]
        if len(first) == len(prompts) or input_ids.shape[1] < 2:
            return {}
        distinct = torch.tensor([rows.index(u) for u in range(len(first))], device=input_ids.device)
        ids, m = input_ids[distinct, :-1], mask[distinct, :-1]
        positions = (m.cumsum(-1) - 1).clamp_(min=0)
        try:
            out = self.lm(
                input_ids=ids, attention_mask=m, position_ids=positions, use_cache=True, logits_to_keep=1
            )
            name = cache_key(out)
            cache = out[name]
            cache.batch_select_indices(torch.tensor(rows, device=input_ids.device))
        except Exception as exc:  # a model whose cache cannot be copied row-wise: plain prefill
            logger.warning("transformers engine: prompt KV sharing turned off for %s: %s", self.name, exc)
            self.share_prefix = False
            return {}
        self.prefill_rows_saved += len(prompts) - len(first)
        return {name: cache}

    def _constraints(self, reqs: list[GenerationRequest]) -> Constraints | None:
        if all(r.response_format is None for r in reqs):
            return None
        return self.grammars().constraints([r.response_format for r in reqs])

    # ------------------------------------------------------------------ score

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        """Sum log-prob of each response followed by the end-of-turn token, given the chat prompt.

        Items that cannot be encoded or exceed the context get ``nan``. One forward pass per batch;
        concurrent calls share batches.
        """
        return self._score_queue(items)

    def _score_locked(self, items: list[tuple[Messages, str]]) -> list[float]:
        with self._lock:
            self.calls += 1
            self.requests_served += len(items)
            return self._score(items)

    def _score(self, items: list[tuple[Messages, str]]) -> list[float]:
        out = [math.nan] * len(items)
        encoded: list[tuple[int, list[int], int]] = []  # (index, prompt + response ids, n response ids)
        for i, (messages, response) in enumerate(items):
            try:
                prompt = self._prompt_ids(messages)
                resp = [*self.tokenizer(response, add_special_tokens=False)["input_ids"], self.eos_id]
            except Exception:
                continue
            if prompt and len(prompt) + len(resp) <= self.context_length:
                encoded.append((i, prompt + resp, len(resp)))
        encoded.sort(key=lambda e: (len(e[1]), e[0]))
        vocab = int(self.lm.config.get_text_config().vocab_size)
        start = 0
        while start < len(encoded):
            end = start + 1
            while end < len(encoded) and end - start < self.batch_size:
                keep = max(e[2] for e in encoded[start : end + 1])
                if (end + 1 - start) * keep * vocab > _SCORE_LOGITS_BUDGET:
                    break
                end += 1
            for (i, _, _), value in zip(
                encoded[start:end], self._score_batch(encoded[start:end]), strict=True
            ):
                out[i] = value
            start = end
        return out

    def _score_batch(self, batch: list[tuple[int, list[int], int]]) -> list[float]:
        input_ids, mask = self._left_pad([ids for _, ids, _ in batch])
        keep = max(n for _, _, n in batch)
        # Left padding puts every response at the end; same position ids as ``generate`` uses.
        position_ids = (mask.cumsum(-1) - 1).clamp_(min=0)
        with torch.inference_mode():
            logits = (
                self.lm(
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=position_ids,
                    logits_to_keep=keep + 1,
                )
                .logits[:, :-1]
                .float()
            )
            targets = input_ids[:, -keep:]
            token_lp = logits.gather(2, targets[..., None]).squeeze(2) - torch.logsumexp(logits, dim=-1)
            cols = torch.arange(keep, device=token_lp.device)
            n_resp = torch.tensor([n for _, _, n in batch], device=token_lp.device)
            in_response = cols[None, :] >= (keep - n_resp)[:, None]
            sums = torch.where(in_response, token_lp, torch.zeros_like(token_lp)).double().sum(dim=1)
        return [float(v) for v in sums.cpu()]
