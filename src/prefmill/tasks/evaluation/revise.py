"""Constitutional critique-revise: critique each candidate against written principles, then rewrite it.

``critique_revise`` returns new ``candidates`` rows, one per usable original (revisions are never
revised again): ``origin = 'revision'``, ``parent_id`` = the original's candidate_id, ``generator`` =
the reviser's engine, ``sampling`` = JSON with the reviser's name, temperature, max_new_tokens, seed
and the critique text. A failed critique or revision is a row with ``error`` set, like any failed
generation. Two engine batches per shard: all critiques, then all revisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from prefmill.engines.base import Engine, GenerationRequest, SamplingParams
from prefmill.ids import canonical_json, content_id, seed_for
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.llm_judge import (
    _engine,
    _generate,
    _need,
    conversation_text,
    history,
    last_user,
)
from prefmill.tasks.evaluation.templates import load_template

if TYPE_CHECKING:
    from prefmill.tasks.evaluation.judges.critique_revise import CritiqueReviseJudge

ORIGIN = "revision"


def critique_revise(config: CritiqueReviseJudge, cands: pa.Table, engine: Engine | None = None) -> pa.Table:
    """Revisions of the usable, non-revision rows of ``cands`` (which needs the prompt's messages)."""
    _need(cands, f"critique_revise {config.name}", ("candidate_id", "prompt_id", "response", "messages"))
    cols = [
        c
        for c in ("candidate_id", "prompt_id", "response", "messages", "error", "origin", "sample_index")
        if c in cands.column_names
    ]
    rows = [
        r
        for r in cands.select(cols).to_pylist()
        if r.get("error") is None and r.get("response") is not None and r.get("origin") != ORIGIN
    ]
    if not rows:
        return empty_table("candidates")
    eng = _engine(config, engine)
    critique_t = load_template("critique", config.critique_template)
    revise_t = load_template("revise", config.revise_template)
    sampling = SamplingParams(config.temperature, 1.0, config.max_new_tokens)
    principles = list(config.principles)

    def variables(r: dict) -> dict:
        return {
            "conversation": conversation_text(r["messages"]),
            "history": history(r["messages"]),
            "prompt": last_user(r["messages"]),
            "response": r["response"],
            "principles": principles,
        }

    seeds = [seed_for(config.seed, config.name, r["candidate_id"]) for r in rows]
    critiques = _generate(
        eng,
        [
            GenerationRequest([{"role": "user", "content": critique_t.render(**variables(r))}], sampling, s)
            for r, s in zip(rows, seeds, strict=True)
        ],
    )
    todo = [i for i, g in enumerate(critiques) if g.error is None]
    revisions = _generate(
        eng,
        [
            GenerationRequest(
                [
                    {
                        "role": "user",
                        "content": revise_t.render(**variables(rows[i]), critique=critiques[i].text),
                    }
                ],
                sampling,
                seed_for(seeds[i], "revise"),
            )
            for i in todo
        ],
    )
    revised = dict(zip(todo, revisions, strict=True))
    out = []
    for i, r in enumerate(rows):
        crit, rev = critiques[i], revised.get(i)
        error = (
            f"critique failed: {crit.error}"
            if crit.error
            else f"revision failed: {rev.error}"
            if rev is not None and rev.error
            else None
        )
        text = None if error or rev is None else rev.text
        if error is None and not (text or "").strip():
            error, text = "revision is empty", None
        info = canonical_json(
            {
                "method": "critique_revise",
                "reviser": config.name,
                "temperature": config.temperature,
                "max_new_tokens": config.max_new_tokens,
                "seed": seeds[i],
                "critique": crit.text,
            }
        )
        out.append(
            {
                "candidate_id": content_id([r["candidate_id"], ORIGIN, eng.name, info]),
                "prompt_id": r["prompt_id"],
                "response": text,
                "generator": eng.name,
                "origin": ORIGIN,
                "sampling": info,
                "sample_index": r.get("sample_index") or 0,
                "n_tokens": (rev.n_tokens if rev is not None else 0),
                "prompt_tokens": (rev.prompt_tokens if rev is not None else crit.prompt_tokens),
                "finish_reason": None if rev is None else rev.finish_reason,
                "logprob": None if rev is None else rev.logprob,
                "latency_ms": crit.latency_ms + (rev.latency_ms if rev is not None else 0.0),
                "error": error,
                "parent_id": r["candidate_id"],
            }
        )
    schema = empty_table("candidates").schema
    return conform(
        "candidates", pa.Table.from_pylist(out, schema=schema), where=f"revisions by {config.name}"
    )
