"""Held-out evaluation of a causal LM folder with prefmill's own verifier (pure functions).

The held-out set is seeded arithmetic word problems (``tasks.prompts.arithmetic``) minus any problem
the training dataset already holds; each model answers greedily, and the arithmetic verifier scores
the final number against the reference. The result is a ``train_eval`` table and an accuracy.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import Engine
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.verifiers import arithmetic_verifier
from prefmill.tasks.prompts.arithmetic import arithmetic_problems
from prefmill.tasks.synthesis.online import synthesize
from prefmill.trainers.config import TrainEvalConfig


def held_out_prompts(settings: TrainEvalConfig, exclude: set[str]) -> pa.Table:
    """``settings.n`` arithmetic problems whose prompt_id is not in ``exclude`` (the training prompts)."""
    if settings.n == 0:
        return arithmetic_problems(0, settings.seed, max_operand=settings.max_operand)
    table = arithmetic_problems(
        settings.n * 2 + len(exclude), settings.seed, max_operand=settings.max_operand
    )
    keep = pc.invert(pc.is_in(table.column("prompt_id"), pa.array(sorted(exclude), pa.string())))
    return table.filter(keep).slice(0, settings.n)


def evaluate(prompts: pa.Table, engine: Engine, *, phase: str, model: str, max_new_tokens: int) -> pa.Table:
    """Greedy answers of ``engine`` to ``prompts``, scored by the arithmetic verifier: a ``train_eval``
    table with one row per prompt (a failed generation is a row with ``error`` and score null)."""
    if prompts.num_rows == 0:
        return empty_table("train_eval")
    cands = synthesize(
        prompts, engine, k=1, temperatures=[0.0], top_p=1.0, max_new_tokens=max_new_tokens, seed=0
    )
    refs = dict(
        zip(prompts.column("prompt_id").to_pylist(), prompts.column("reference").to_pylist(), strict=True)
    )
    texts = {
        pid: msgs[-1]["content"]
        for pid, msgs in zip(
            prompts.column("prompt_id").to_pylist(), prompts.column("messages").to_pylist(), strict=True
        )
    }
    pids = cands.column("prompt_id").to_pylist()
    with_ref = cands.append_column("reference", pa.array([refs[p] for p in pids], pa.string()))
    judged = arithmetic_verifier(with_ref)
    score = dict(
        zip(judged.column("candidate_id").to_pylist(), judged.column("score").to_pylist(), strict=True)
    )
    raw = dict(zip(judged.column("candidate_id").to_pylist(), judged.column("raw").to_pylist(), strict=True))
    cids = cands.column("candidate_id").to_pylist()
    n = cands.num_rows
    table = pa.table(
        {
            "phase": [phase] * n,
            "model": [model] * n,
            "prompt_id": pids,
            "prompt": [texts[p] for p in pids],
            "reference": [refs[p] for p in pids],
            "response": cands.column("response"),
            "extracted": [raw.get(c) for c in cids],
            "score": pa.array([score.get(c) for c in cids], pa.float64()),
            "n_tokens": cands.column("n_tokens"),
            "error": cands.column("error"),
        }
    )
    return conform("train_eval", table)


def accuracy(table: pa.Table) -> float | None:
    """Mean verifier score (failed rows count as wrong); None for an empty table."""
    if table.num_rows == 0:
        return None
    scores = pc.fill_null(table.column("score"), 0.0)
    return float(pc.mean(scores).as_py())
