"""The keys of online samples, many at once: each sample's seed, sampling JSON and candidate id.

The values are exactly ``seed_for(seed, [policy,] prompt_id, i)``, ``canonical_json({temperature,
top_p, max_new_tokens, seed})`` and ``content_id([prompt_id, generator, sampling, i])`` row by row
(a unit test holds it); what the rows of one sample index share (their sampling JSON around the
seed, and its escaped form inside the id's JSON) and of one prompt (its id's JSON) is encoded once,
so a row costs two sha256 calls and a few string joins instead of four JSON encodings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefmill.engines.base import SamplingParams
from prefmill.ids import ID_LENGTH, canonical_json

#: A number no temperature, top_p or max_new_tokens prints: where a sample's seed goes in its JSON.
_SENTINEL = "-987654321987654321"
_SEED_MASK = (1 << 63) - 1


@dataclass
class SampleKeys:
    """One entry per sample, in prompt order then sample order."""

    prompt_ids: list[str] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    samplings: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    params: list[SamplingParams] = field(default_factory=list)


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
    shared = []  # per sample index: the sampling JSON around the seed, and the same escaped
    for i, sp in enumerate(params):
        text = canonical_json(
            {"temperature": sp.temperature, "top_p": sp.top_p, "max_new_tokens": max_new_tokens, "seed": 0}
        )
        text = text.replace('"seed":0', f'"seed":{_SENTINEL}')
        head, tail = text.split(_SENTINEL)
        esc_head, esc_tail = canonical_json(head)[1:-1], canonical_json(tail)[1:-1]
        shared.append((head, tail, f',"{esc_head}', f'{esc_tail}",{i}]'))
    seed_head = (
        "[" + canonical_json(seed) + "," + (canonical_json(policy) + "," if policy is not None else "")
    )
    gen = "," + canonical_json(generator)
    out = SampleKeys()
    for pid in prompt_ids:
        pid_json = canonical_json(pid)
        seed_prefix = seed_head + pid_json + ","
        id_prefix = "[" + pid_json + gen
        for i in range(k):
            if only is not None and (pid, i) not in only:
                continue
            head, tail, id_mid, id_tail = shared[i]
            s = int.from_bytes(sha(f"{seed_prefix}{i}]".encode()).digest()[:8], "big") & _SEED_MASK
            out.prompt_ids.append(pid)
            out.indices.append(i)
            out.seeds.append(s)
            out.samplings.append(f"{head}{s}{tail}")
            out.ids.append(sha(f"{id_prefix}{id_mid}{s}{id_tail}".encode()).hexdigest()[:ID_LENGTH])
            out.params.append(params[i])
    return out
