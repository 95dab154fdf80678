"""Best-of-n / rejection sampling (RS-DPO style): sample in rounds until a verifier accepts.

Round r draws samples ``r*k .. (r+1)*k - 1`` (capped at ``budget``) for every prompt that still has
fewer than ``min_accepted`` accepted samples; prompts without a reference cannot be verified and get
the first round only (``accepted`` null). Every sample is kept -- the rejected ones are the negatives
of RS-DPO pairs -- with ``accepted`` (the verifier's verdict; null for error rows and unverifiable
prompts) and ``attempts`` (how many samples the prompt drew). Sample i has the seed and id it would
have under plain sampling, so a larger budget extends a smaller one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import Engine, Progress
from prefmill.errors import RecipeError
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.verifiers import arithmetic_verifier
from prefmill.tasks.synthesis.online import synthesize

STRATEGY = "best_of_n"
VERIFIERS = ("arithmetic",)


def verify(cands: pa.Table, references: dict[str, str | None]) -> list[bool | None]:
    """The arithmetic verifier's verdict per row of ``cands`` (None: error row, no reference, or a
    reference without a number)."""
    if cands.num_rows == 0:
        return []
    refs = pa.array([references.get(p) for p in cands.column("prompt_id").to_pylist()], pa.string())
    judged = arithmetic_verifier(
        cands.select(["candidate_id", "prompt_id", "response", "error"]).append_column("reference", refs)
    )
    verdict = {
        c: (None if s is None else s >= 1.0)
        for c, s in zip(
            judged.column("candidate_id").to_pylist(), judged.column("score").to_pylist(), strict=True
        )
    }
    return [verdict.get(c) for c in cands.column("candidate_id").to_pylist()]


def best_of_n(
    prompts: pa.Table,
    engine: Engine,
    *,
    k: int,
    budget: int,
    min_accepted: int,
    temperatures: Sequence[float],
    top_p: float | Sequence[float],
    max_new_tokens: int,
    seed: int,
    policy: str | None = None,
    accept: str = "arithmetic",
    progress: Progress | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Rejection-sample ``prompts`` (needs ``prompt_id``, ``messages``, ``reference``).

    Returns the candidates (prompt order, then sample order) and stats: ``best_of_n_samples``,
    ``best_of_n_rounds``, ``best_of_n_verifiable`` (prompts with a reference) and
    ``best_of_n_accepted_prompts`` (prompts that reached ``min_accepted``)."""
    if accept not in VERIFIERS:
        raise RecipeError(f"synthesis.best_of_n.accept: unknown verifier '{accept}'; use one of {VERIFIERS}")
    if budget < 1 or min_accepted < 1:
        raise RecipeError("synthesis.best_of_n: budget and min_accepted must be >= 1")
    if prompts.num_rows == 0:
        return empty_table("candidates"), {}
    pids: list[str] = prompts.column("prompt_id").to_pylist()
    refs = (
        prompts.column("reference").to_pylist() if "reference" in prompts.column_names else [None] * len(pids)
    )
    references = dict(zip(pids, refs, strict=True))
    args = {
        "k": budget,
        "temperatures": temperatures,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "policy": policy,
        "strategy": STRATEGY,
        "progress": progress,
    }
    accepted = dict.fromkeys(pids, 0)
    drawn = dict.fromkeys(pids, 0)
    active = list(pids)
    parts: list[pa.Table] = []
    verdicts: list[bool | None] = []
    rounds = 0
    start = 0
    while active and start < budget:
        stop = min(start + k, budget)
        only = {(p, i) for p in active for i in range(start, stop)}
        wanted = prompts.filter(pc.is_in(prompts.column("prompt_id"), pa.array(active, pa.string())))
        part = synthesize(wanted, engine, only=only, **args)
        got = verify(part, references)
        for p, ok in zip(part.column("prompt_id").to_pylist(), got, strict=True):
            drawn[p] += 1
            accepted[p] += bool(ok)
        parts.append(part)
        verdicts += got
        rounds += 1
        start = stop
        active = [p for p in active if references[p] is not None and accepted[p] < min_accepted]
    table = pa.concat_tables(parts)
    table = table.append_column("_accepted", pa.array(verdicts, pa.bool_()))
    order = {p: i for i, p in enumerate(pids)}
    keys = [
        (order[p], i)
        for p, i in zip(
            table.column("prompt_id").to_pylist(), table.column("sample_index").to_pylist(), strict=True
        )
    ]
    table = table.take(sorted(range(len(keys)), key=keys.__getitem__))
    attempts = pa.array([drawn[p] for p in table.column("prompt_id").to_pylist()], pa.int32())
    table = table.set_column(table.column_names.index("accepted"), "accepted", table.column("_accepted"))
    table = table.set_column(table.column_names.index("attempts"), "attempts", attempts).drop_columns(
        ["_accepted"]
    )
    verifiable = [p for p in pids if references[p] is not None]
    stats = {
        "best_of_n_samples": table.num_rows,
        "best_of_n_rounds": rounds,
        "best_of_n_verifiable": len(verifiable),
        "best_of_n_accepted_prompts": sum(accepted[p] >= min_accepted for p in verifiable),
    }
    return conform("candidates", table, where="best-of-n"), stats
