"""The keys of online samples, many at once: each sample's seed, sampling JSON and candidate id.

The values are exactly ``seed_for(seed, [policy,] prompt_id, i)``, ``canonical_json({temperature,
top_p, max_new_tokens, seed})`` and ``content_id([prompt_id, generator, sampling, i])`` row by row
(a unit test holds it), built column-wise: what the rows of one sample index share (their sampling
JSON around the seed, and its escaped form inside the id's JSON) and of one prompt (its id's JSON)
is encoded once, the texts are joined by Arrow, the seeds are read out of the digests and the ids
hex-encoded by numpy, so a row costs two sha256 calls in a list comprehension and nothing else in
Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import SamplingParams
from prefmill.ids import ID_LENGTH, canonical_json

#: A number no temperature, top_p or max_new_tokens prints: where a sample's seed goes in its JSON.
_SENTINEL = "-987654321987654321"
_SEED_MASK = np.uint64((1 << 63) - 1)
_DIGEST = 32  # bytes of a sha256 digest
#: The two lowercase hex characters of each byte value.
_HEX = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), np.uint8).reshape(256, 2)


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


def digest_seeds(digests: list[bytes]) -> np.ndarray:
    """``int.from_bytes(d[:8], "big") & (2**63 - 1)`` of each sha256 digest, as int64."""
    if not digests:
        return np.zeros(0, np.int64)
    heads = np.frombuffer(b"".join(digests), np.dtype(">u8")).reshape(len(digests), _DIGEST // 8)[:, 0]
    return (heads & _SEED_MASK).astype(np.int64)


def digest_ids(digests: list[bytes]) -> pa.Array:
    """The first ``ID_LENGTH`` lowercase hex characters of each sha256 digest (``hexdigest()[:16]``)."""
    n = len(digests)
    if not n:
        return pa.array([], pa.string())
    raw = np.frombuffer(b"".join(digests), np.uint8).reshape(n, _DIGEST)[:, : ID_LENGTH // 2]
    text = np.ascontiguousarray(_HEX[raw].reshape(n * ID_LENGTH))
    offsets = np.arange(0, (n + 1) * ID_LENGTH, ID_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


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

    index_arr = pa.array(indices)
    samplings = pc.binary_join_element_wise(
        pc.take(pa.array(heads, pa.string()), index_arr), seed_text, pc.take(pa.array(tails), index_arr), ""
    )
    # content_id([pid, generator, sampling, i]): the sampling JSON is escaped inside the id's JSON
    id_heads = pc.binary_join_element_wise(
        pc.take(pa.array([f"[{p}{gen}" for p in pid_json], pa.string()), pa.array(rows)),
        pc.take(pa.array(id_mids, pa.string()), index_arr),
        "",
    )
    id_texts = pc.binary_join_element_wise(id_heads, seed_text, pc.take(pa.array(id_tails), index_arr), "")
    ids = digest_ids([sha(t).digest() for t in id_texts.cast(pa.binary()).to_pylist()])
    return SampleKeys(
        prompt_rows=rows,
        indices=indices,
        seeds=seeds.tolist(),
        prompt_ids=pc.take(pa.array(prompt_ids, pa.string()), pa.array(rows)),
        samplings=samplings,
        ids=ids,
        params=params,
    )
