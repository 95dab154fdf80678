"""Online synthesis: k candidate responses per prompt from a policy engine (one shard, pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import Engine, Progress
from prefmill.engines.samples import SampleBatch, generate_samples
from prefmill.errors import RecipeError, SchemaError
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.synthesis.sample_keys import sample_keys

#: Bump when the rows the synthesis stage writes for the same inputs change meaning.
#: 2: strategy columns (policy, strategy, policy_logprob, rating, stated_probability, accepted, attempts,
#: duplicate_of, raw); top_p ladders; several policies; offline import.
SYNTHESIS_CODE_VERSION = "2"
ORIGIN = "online"


def ladder(values: float | Sequence[float]) -> list[float]:
    """A ladder from one value or a list of values."""
    return [float(values)] if isinstance(values, int | float) else [float(v) for v in values]


def _check_config(
    k: int, temperatures: Sequence[float], top_ps: Sequence[float], max_new_tokens: int
) -> None:
    problems = []
    if k < 1:
        problems.append(f"k must be >= 1, got {k}")
    if not temperatures:
        problems.append("temperatures must list at least one value")
    elif any(not t >= 0 for t in temperatures):
        problems.append(f"temperatures must be >= 0, got {list(temperatures)}")
    if not top_ps or any(not 0 < p <= 1 for p in top_ps):
        shown = top_ps[0] if len(top_ps) == 1 else list(top_ps)
        problems.append(f"top_p must be in (0, 1], got {shown}")
    if max_new_tokens < 1:
        problems.append(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if problems:
        raise RecipeError("synthesis: " + "; ".join(problems) + "; fix the synthesis section of the recipe")


def synthesize(
    prompts: pa.Table,
    engine: Engine,
    *,
    k: int,
    temperatures: Sequence[float],
    top_p: float | Sequence[float],
    max_new_tokens: int,
    seed: int,
    progress: Progress | None = None,
    only: set[tuple[str, int]] | None = None,
    policy: str | None = None,
    strategy: str = "sample",
) -> pa.Table:
    """``candidates`` rows: for each prompt and ``sample_index`` in ``range(k)``, one engine sample.

    The temperature of sample i is ``temperatures[i % len(temperatures)]`` and its top_p
    ``top_p[i % len(top_p)]`` (ladders; one number is a ladder of one); its seed is
    ``seed_for(seed, prompt_id, i)``, or ``seed_for(seed, policy, prompt_id, i)`` for a named policy, so
    two policies of one build never share seeds. Failed generations are rows with ``response`` null and
    ``error`` set. Rows come in prompt order, then sample order. ``only`` restricts the work to those
    ``(prompt_id, sample_index)`` pairs (a retry of failed rows gets the same seeds, hence the same ids).
    ``policy`` and ``strategy`` fill the columns of the same names.
    """
    top_ps = ladder(top_p)
    _check_config(k, temperatures, top_ps, max_new_tokens)
    missing = [c for c in ("prompt_id", "messages") if c not in prompts.column_names]
    if missing:
        raise SchemaError(f"synthesis: the prompts shard lacks column(s) {', '.join(missing)}")
    if prompts.num_rows == 0:
        return empty_table("candidates")

    prompt_ids: list[str] = prompts.column("prompt_id").to_pylist()
    messages: list[list[dict[str, str]]] = prompts.column("messages").to_pylist()
    generator = engine.name
    temps = [float(t) for t in temperatures]
    max_new_tokens = int(max_new_tokens)

    keys = sample_keys(
        prompt_ids,
        k=k,
        temperatures=temps,
        top_ps=top_ps,
        max_new_tokens=max_new_tokens,
        seed=seed,
        generator=generator,
        policy=policy,
        only=only,
    )
    batch = SampleBatch(messages, keys.params, keys.prompt_rows, keys.indices, keys.seeds)
    generated = generate_samples(engine, batch, progress)
    n = len(batch)
    table = pa.table(
        {
            "candidate_id": keys.ids,
            "prompt_id": keys.prompt_ids,
            **generated,
            "generator": pa.repeat(pa.scalar(generator, pa.string()), n),
            "origin": pa.repeat(pa.scalar(ORIGIN, pa.string()), n),
            "sampling": keys.samplings,
            "sample_index": pa.array(keys.indices, pa.int32()),
            "policy": pa.repeat(pa.scalar(policy, pa.string()), n),
            "strategy": pa.repeat(pa.scalar(strategy, pa.string()), n),
        }
    )
    return conform("candidates", table, where="synthesis")


def retry_failed(
    previous: pa.Table, prompts: pa.Table, engine: Engine, **sampling: Any
) -> tuple[pa.Table, int]:
    """``previous`` (a candidates shard) with its failed rows generated again, in the same order.

    ``sampling`` are the keyword arguments of ``synthesize`` that made ``previous`` (k, temperatures,
    top_p, max_new_tokens, seed, progress). Only rows with ``error`` set go to the engine, with their
    original seeds; the others are kept as they are. Returns the new shard and how many rows were
    retried.
    """
    errors = previous.column("error").to_pylist()
    failed = {
        (pid, int(i))
        for pid, i, e in zip(
            previous.column("prompt_id").to_pylist(),
            previous.column("sample_index").to_pylist(),
            errors,
            strict=True,
        )
        if e is not None
    }
    if not failed:
        return previous, 0
    wanted = prompts.filter(pc.is_in(prompts.column("prompt_id"), pa.array(sorted({p for p, _ in failed}))))
    fresh = synthesize(wanted, engine, **sampling, only=failed)
    by_id = {
        cid: row for cid, row in zip(fresh.column("candidate_id").to_pylist(), fresh.to_pylist(), strict=True)
    }
    rows = [
        by_id.get(row["candidate_id"], row) if row["error"] is not None else row
        for row in previous.to_pylist()
    ]
    return conform("candidates", pa.Table.from_pylist(rows, schema=previous.schema), where="retry"), len(
        failed
    )
