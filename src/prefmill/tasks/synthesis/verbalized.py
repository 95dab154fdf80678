"""Verbalized sampling: one call asks the model for ``n`` distinct responses with their probabilities.

The instruction (``DEFAULT_TEMPLATE`` or the recipe's, ``{n}`` replaced) is appended to the prompt's
last user message. The output is parsed into separate candidates: each ``<text>...</text>`` block (inside
``<response>`` blocks, or bare) is one response, and the ``<probability>`` that follows it is kept in
``stated_probability`` (a percentage is divided by 100; a value outside [0, 1] or missing is null).
At most ``n`` responses are kept per call. A call whose output holds no ``<text>`` block is one error
row with ``raw`` = the whole output; an engine failure is one error row with ``raw`` null.

Call c of a prompt gets ``sample_index`` ``c*n + j`` for its j-th response (``c*n`` for its error row).
A call's ``n_tokens`` and ``latency_ms`` are counted on its first row (0 on the others), so the
manifest's token total stays the number of generated tokens; ``logprob`` is null (it belongs to the
whole output, not to one response).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from prefmill.engines.base import Engine, GenerationRequest, Progress, SamplingParams
from prefmill.errors import EngineError, RecipeError, SchemaError
from prefmill.ids import canonical_json, content_id, seed_for
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.synthesis.online import ORIGIN, ladder

STRATEGY = "verbalized"
DEFAULT_TEMPLATE = (
    "Give {n} different possible responses to the request above. Write each one as\n"
    "<response><text>THE RESPONSE</text><probability>P</probability></response>\n"
    "where P is a number between 0 and 1: how likely you would be to give that response. "
    "Output only the {n} response blocks."
)
_TEXT = re.compile(r"<text>(.*?)(?:</text>|(?=<probability>)|(?=</response>)|\Z)", re.S | re.I)
_PROB = re.compile(r"<probability>\s*([-+0-9.eE]+)\s*(%?)\s*(?:</probability>)?", re.I)


def instruction(n: int, template: str | None = None) -> str:
    """The instruction appended to the prompt (``{n}`` replaced by ``n``)."""
    return (template or DEFAULT_TEMPLATE).replace("{n}", str(n))


def parse(text: str, n: int) -> list[tuple[str, float | None]]:
    """(response, stated probability) for each ``<text>`` block of ``text``, at most ``n``."""
    out: list[tuple[str, float | None]] = []
    matches = list(_TEXT.finditer(text))
    for i, m in enumerate(matches):
        body = m.group(1).strip()
        if not body:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        prob = _PROB.search(text, m.end(), end)
        value: float | None = None
        if prob is not None:
            try:
                value = float(prob.group(1)) / (100.0 if prob.group(2) else 1.0)
            except ValueError:
                value = None
            if value is not None and not 0.0 <= value <= 1.0:
                value = None
        out.append((body, value))
        if len(out) == n:
            break
    return out


def verbalize(
    prompts: pa.Table,
    engine: Engine,
    *,
    k: int,
    n: int,
    temperatures: Sequence[float],
    top_p: float | Sequence[float],
    max_new_tokens: int,
    seed: int,
    template: str | None = None,
    policy: str | None = None,
    progress: Progress | None = None,
    only: set[tuple[str, int]] | None = None,
) -> pa.Table:
    """``candidates`` rows from ``k`` verbalized calls per prompt (``only``: (prompt_id, call) pairs)."""
    if k < 1 or n < 1:
        raise RecipeError(f"synthesis: verbalized sampling needs k >= 1 and verbalized.n >= 1, got {k}, {n}")
    missing = [c for c in ("prompt_id", "messages") if c not in prompts.column_names]
    if missing:
        raise SchemaError(f"verbalized synthesis: the prompts shard lacks column(s) {', '.join(missing)}")
    if prompts.num_rows == 0:
        return empty_table("candidates")
    temps, top_ps = ladder(temperatures), ladder(top_p)
    ask = instruction(n, template)
    template_id = content_id(ask)
    generator = engine.name
    requests: list[GenerationRequest] = []
    keys: list[tuple[str, int, str]] = []
    for pid, msgs in zip(
        prompts.column("prompt_id").to_pylist(), prompts.column("messages").to_pylist(), strict=True
    ):
        chat = [dict(m) for m in msgs]
        chat[-1] = {"role": chat[-1]["role"], "content": chat[-1]["content"] + "\n\n" + ask}
        for c in range(k):
            if only is not None and (pid, c) not in only:
                continue
            sp = SamplingParams(temps[c % len(temps)], top_ps[c % len(top_ps)], int(max_new_tokens))
            s = (
                seed_for(seed, STRATEGY, pid, c)
                if policy is None
                else seed_for(seed, policy, STRATEGY, pid, c)
            )
            sampling = canonical_json(
                {
                    "temperature": sp.temperature,
                    "top_p": sp.top_p,
                    "max_new_tokens": sp.max_new_tokens,
                    "seed": s,
                    "verbalized_n": n,
                    "template": template_id,
                }
            )
            requests.append(GenerationRequest(chat, sp, s))
            keys.append((pid, c, sampling))
    generations = engine.generate(requests, progress)
    if len(generations) != len(requests):
        raise EngineError(
            f"engine {generator} returned {len(generations)} results for {len(requests)} requests"
        )
    cols: dict[str, list] = {
        name: []
        for name in (
            "candidate_id",
            "prompt_id",
            "response",
            "sampling",
            "sample_index",
            "n_tokens",
            "prompt_tokens",
            "finish_reason",
            "latency_ms",
            "error",
            "stated_probability",
            "raw",
        )
    }

    def add(pid: str, index: int, sampling: str, response: str | None, g, first: bool, **kw) -> None:
        cols["candidate_id"].append(content_id([pid, generator, sampling, index]))
        cols["prompt_id"].append(pid)
        cols["response"].append(response)
        cols["sampling"].append(sampling)
        cols["sample_index"].append(index)
        cols["n_tokens"].append(g.n_tokens if first else 0)
        cols["prompt_tokens"].append(g.prompt_tokens if first else 0)
        cols["finish_reason"].append(g.finish_reason)
        cols["latency_ms"].append(g.latency_ms if first else 0.0)
        cols["error"].append(kw.get("error"))
        cols["stated_probability"].append(kw.get("probability"))
        cols["raw"].append(kw.get("raw"))

    for (pid, c, sampling), g in zip(keys, generations, strict=True):
        if g.error is not None:
            add(pid, c * n, sampling, None, g, True, error=g.error)
            continue
        parsed = parse(g.text or "", n)
        if not parsed:
            add(
                pid,
                c * n,
                sampling,
                None,
                g,
                True,
                raw=g.text,
                error=f"verbalized output holds no <text> block (asked for {n} <response> blocks); "
                "the output is kept in `raw`",
            )
            continue
        for j, (text, prob) in enumerate(parsed):
            add(pid, c * n + j, sampling, text, g, j == 0, probability=prob)
    m = len(cols["candidate_id"])
    table = pa.table(
        {
            "candidate_id": pa.array(cols["candidate_id"], pa.string()),
            "prompt_id": pa.array(cols["prompt_id"], pa.string()),
            "response": pa.array(cols["response"], pa.string()),
            "generator": pa.array([generator] * m, pa.string()),
            "origin": pa.array([ORIGIN] * m, pa.string()),
            "sampling": pa.array(cols["sampling"], pa.string()),
            "sample_index": pa.array(cols["sample_index"], pa.int32()),
            "n_tokens": pa.array(cols["n_tokens"], pa.int64()),
            "prompt_tokens": pa.array(cols["prompt_tokens"], pa.int64()),
            "finish_reason": pa.array(cols["finish_reason"], pa.string()),
            "logprob": pa.nulls(m, pa.float64()),
            "latency_ms": pa.array(cols["latency_ms"], pa.float64()),
            "error": pa.array(cols["error"], pa.string()),
            "policy": pa.array([policy] * m, pa.string()),
            "strategy": pa.array([STRATEGY] * m, pa.string()),
            "stated_probability": pa.array(cols["stated_probability"], pa.float64()),
            "raw": pa.array(cols["raw"], pa.string()),
        }
    )
    return conform("candidates", table, where="verbalized synthesis")
