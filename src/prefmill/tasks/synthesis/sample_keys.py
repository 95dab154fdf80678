"""The keys of online samples, many at once: each sample's seed, sampling JSON and candidate id.

The values are exactly ``seed_for(seed, [policy,] prompt_id, i)``, ``canonical_json({temperature,
top_p, max_new_tokens, seed})`` and ``content_id([prompt_id, generator, sampling, i])`` row by row
(a unit test holds it), built column-wise: what the rows of one sample index share (their sampling
JSON around the seed, and its escaped form inside the id's JSON) and of one prompt (its id's JSON)
is encoded once, the texts are joined by Arrow, the seeds are read out of the digests and the ids
hex-encoded by numpy (``prefmill.column_ids``), so a row costs two sha256 calls in a list
comprehension and nothing else in Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from prefmill.column_ids import content_ids, digest_seeds, join
from prefmill.engines.base import SamplingParams
from prefmill.ids import canonical_json

#: A number no temperature, top_p or max_new_tokens prints: where a sample's seed goes in its JSON.
_SENTINEL = "-987654321987654321"


@dataclass
class SampleKeys:
    """One entry per sample, in prompt order then sample order: ``prompt_rows`` (the sample's
    prompt, by its position in the ``prompt_ids`` given) and ``indices`` (its sample index) as
    numpy arrays, ``seeds`` as Python ints (requests take them), ``prompt_ids``, ``samplings`` and
    ``ids`` as Arrow string arrays. ``params[i]`` is the sampling of sample index ``i``."""

    prompt_rows: np.ndarray
    indices: np.ndarray
    seeds: list[int]
    prompt_ids: pa.Array
    samplings: pa.Array
    ids: pa.Array
    params: list[SamplingParams]

    def __len__(self) -> int:
        return len(self.seeds)


def _rows(
    prompt_ids: Sequence[str], k: int, only: set[tuple[str, int]] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The (prompt position, sample index) of every sample, in prompt order then sample order."""
    if only is None:
        n = len(prompt_ids)
        return np.repeat(np.arange(n, dtype=np.int64), k), np.tile(np.arange(k, dtype=np.int64), n)
    pairs = [(p, i) for p, pid in enumerate(prompt_ids) for i in range(k) if (pid, i) in only]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.array(pairs, np.int64)
    return rows[:, 0], rows[:, 1]


def sample_keys(
    prompt_ids: Sequence[str],
    *,
    k: int,
    temperatures: Sequence[float],
    top_ps: Sequence[float],
    max_new_tokens: int,
    seed: int,
    generator: str,
    policy: str | None = None,
    only: set[tuple[str, int]] | None = None,
) -> SampleKeys:
    """The keys of samples ``0..k-1`` of every prompt (only the ``only`` pairs, when given)."""
    sha = hashlib.sha256
    params = [
        SamplingParams(temperatures[i % len(temperatures)], top_ps[i % len(top_ps)], max_new_tokens)
        for i in range(k)
    ]
    heads, tails, id_mids, id_tails = [], [], [], []  # per sample index
    for i, sp in enumerate(params):
        text = canonical_json(
            {"temperature": sp.temperature, "top_p": sp.top_p, "max_new_tokens": max_new_tokens, "seed": 0}
        )
        text = text.replace('"seed":0', f'"seed":{_SENTINEL}')
        head, tail = text.split(_SENTINEL)
        heads.append(head)
        tails.append(tail)
        id_mids.append(f',"{canonical_json(head)[1:-1]}')
        id_tails.append(f'{canonical_json(tail)[1:-1]}",{i}]')
    seed_head = (
        "[" + canonical_json(seed) + "," + (canonical_json(policy) + "," if policy is not None else "")
    )
    gen = "," + canonical_json(generator)
    pid_json = [canonical_json(pid) for pid in prompt_ids]
    rows, indices = _rows(prompt_ids, k, only)

    # seed_for(seed, [policy,] pid, i): sha256 of '[seed,[policy,]"pid",i]'
    seed_prefixes = [(seed_head + p + ",").encode() for p in pid_json]
    seed_suffixes = [f"{i}]".encode() for i in range(k)]
    if only is None:
        digests = [sha(p + s).digest() for p in seed_prefixes for s in seed_suffixes]
    else:
        digests = [
            sha(seed_prefixes[p] + seed_suffixes[i]).digest() for p, i in zip(rows, indices, strict=True)
        ]
    seeds = digest_seeds(digests)
    seed_text = pa.array(seeds, pa.int64()).cast(pa.string())

    by_index = pa.array(indices)

    def per_index(values: list[str]) -> pa.Array:
        return pa.array(values, pa.string()).take(by_index)

    samplings = join(per_index(heads), seed_text, per_index(tails))
    # content_id([pid, generator, sampling, i]): the sampling JSON is escaped inside the id's JSON
    id_heads = pa.array([f"[{p}{gen}" for p in pid_json], pa.string()).take(pa.array(rows))
    ids = content_ids(join(id_heads, per_index(id_mids), seed_text, per_index(id_tails)))
    return SampleKeys(
        prompt_rows=rows,
        indices=indices,
        seeds=seeds.tolist(),
        prompt_ids=pa.array(prompt_ids, pa.string()).take(pa.array(rows)),
        samplings=samplings,
        ids=ids,
        params=params,
    )
