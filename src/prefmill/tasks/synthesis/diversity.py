"""Diversity of a prompt's candidates: near-duplicate marking and a mode-collapse check.

Near-duplicates: within one prompt, candidates are taken in row order; a candidate whose embedding
(``prefmill.embeddings.embed``, all-MiniLM-L6-v2, unit length) has cosine >= ``threshold`` with an
earlier candidate that is not itself a duplicate gets ``duplicate_of`` = that candidate's id (the
first such). Error rows are neither marked nor compared.

Per prompt (with at least two successful candidates): ``distinct_1`` / ``distinct_2`` (unique
word uni/bigrams over all n-grams of the prompt's responses, lower-cased whitespace tokens) and
``spread`` (mean pairwise cosine distance 1 - cos of the embeddings; 0 when all responses say the same).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams over ``texts`` (0 when there is no n-gram)."""
    grams: list[tuple[str, ...]] = []
    for t in texts:
        words = t.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _groups(cands: pa.Table) -> dict[str, list[int]]:
    ok = pc.and_(pc.is_valid(cands.column("response")), pc.is_null(cands.column("error"))).to_pylist()
    groups: dict[str, list[int]] = {}
    for i, (pid, good) in enumerate(zip(cands.column("prompt_id").to_pylist(), ok, strict=True)):
        if good:
            groups.setdefault(pid, []).append(i)
    return groups


def diversity(cands: pa.Table, *, threshold: float) -> tuple[pa.Table, pa.Table]:
    """``cands`` with ``duplicate_of`` set, and a per-prompt report (prompt_id, candidates,
    near_duplicates, distinct_1, distinct_2, spread) for prompts with >= 2 successful candidates."""
    from prefmill.embeddings import embed

    groups = _groups(cands)
    texts = cands.column("response").to_pylist()
    ids = cands.column("candidate_id").to_pylist()
    rows = [i for members in groups.values() for i in members]
    vectors = embed([texts[i] for i in rows]) if rows else np.zeros((0, 0), np.float32)
    at = {i: j for j, i in enumerate(rows)}
    dup: list[str | None] = [None] * cands.num_rows
    report: dict[str, list[Any]] = {
        k: [] for k in ("prompt_id", "candidates", "near_duplicates", "distinct_1", "distinct_2", "spread")
    }
    for pid, members in groups.items():
        v = vectors[[at[i] for i in members]]
        sims = np.clip(v @ v.T, -1.0, 1.0)
        reps: list[int] = []
        for a in range(len(members)):
            hit = next((r for r in reps if sims[r, a] >= threshold), None)
            if hit is None:
                reps.append(a)
            else:
                dup[members[a]] = ids[members[hit]]
        if len(members) < 2:
            continue
        upper = sims[np.triu_indices(len(members), 1)]
        report["prompt_id"].append(pid)
        report["candidates"].append(len(members))
        report["near_duplicates"].append(len(members) - len(reps))
        report["distinct_1"].append(distinct_n([texts[i] for i in members], 1))
        report["distinct_2"].append(distinct_n([texts[i] for i in members], 2))
        report["spread"].append(float(np.mean(1.0 - upper)))
    index = cands.column_names.index("duplicate_of")
    marked = cands.set_column(index, cands.schema.field(index), pa.array(dup, pa.string()))
    types = {"prompt_id": pa.string(), "candidates": pa.int32(), "near_duplicates": pa.int32()}
    table = pa.table({k: pa.array(v, types.get(k, pa.float64())) for k, v in report.items()})
    return marked, table


def diversity_stats(report: pa.Table, *, low_spread: float) -> dict[str, float | int]:
    """Sums for the manifest (``*_sum`` / ``diversity_prompts`` give the means) and the count of prompts
    whose spread is below ``low_spread`` (mode collapse)."""
    if report.num_rows == 0:
        return {"diversity_prompts": 0}
    spread = report.column("spread").to_pylist()
    return {
        "diversity_prompts": report.num_rows,
        "near_duplicates": int(pc.sum(report.column("near_duplicates")).as_py()),
        "distinct_1_sum": round(float(pc.sum(report.column("distinct_1")).as_py()), 6),
        "distinct_2_sum": round(float(pc.sum(report.column("distinct_2")).as_py()), 6),
        "spread_sum": round(float(sum(spread)), 6),
        "low_diversity_prompts": sum(s < low_spread for s in spread),
    }


def diversity_means(stats: dict[str, Any]) -> dict[str, float]:
    """Means per prompt from a manifest's summed stats (empty when diversity was off)."""
    n = stats.get("diversity_prompts") or 0
    if not n:
        return {}
    return {k: stats.get(f"{k}_sum", 0.0) / n for k in ("distinct_1", "distinct_2", "spread")}
