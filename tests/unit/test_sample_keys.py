"""The column-wise sample keys equal the row-by-row formulas (seed_for, canonical_json, content_id)."""

from __future__ import annotations

import hashlib
import random

from prefmill.column_ids import digest_seeds, hex_ids
from prefmill.ids import canonical_json, content_id, seed_for
from prefmill.tasks.synthesis.sample_keys import sample_keys

#: Prompt ids that stress the JSON escaping: quotes, backslashes, control characters, unicode
#: (accents, CJK, an emoji, a lone surrogate's neighbour U+FFFF), an empty id, a 16-hex id.
ODD_IDS = [
    "a1b2c3d4e5f60718",
    'odd "id" é\\',
    "x",
    "",
    "tab\there\nnew\r\x00\x1f\x7f",
    "中文 🙂 \ufeff\uffff",
    "\\u0041 not an escape",
    "</script>",
]


def _slow(
    pid: str,
    i: int,
    *,
    seed: int,
    policy: str | None,
    temps: list[float],
    top_ps: list[float],
    max_new_tokens: int,
    generator: str,
) -> tuple:
    s = seed_for(seed, pid, i) if policy is None else seed_for(seed, policy, pid, i)
    sampling = canonical_json(
        {
            "temperature": temps[i % len(temps)],
            "top_p": top_ps[i % len(top_ps)],
            "max_new_tokens": max_new_tokens,
            "seed": s,
        }
    )
    return pid, i, s, sampling, content_id([pid, generator, sampling, i])


def _got(keys: object) -> list[tuple]:
    return list(
        zip(
            keys.prompt_ids.to_pylist(),  # type: ignore[attr-defined]
            keys.indices.tolist(),  # type: ignore[attr-defined]
            keys.seeds,  # type: ignore[attr-defined]
            keys.samplings.to_pylist(),  # type: ignore[attr-defined]
            keys.ids.to_pylist(),  # type: ignore[attr-defined]
            strict=True,
        )
    )


def test_batched_keys_equal_the_row_formulas() -> None:
    generator = 'scripted:"q"é'
    for policy in (None, 'pol "p"'):
        for temps, top_ps in (([0.7, 1.0, 0.0], [0.95]), ([1.0], [1.0, 0.5])):
            keys = sample_keys(
                ODD_IDS,
                k=3,
                temperatures=temps,
                top_ps=top_ps,
                max_new_tokens=24,
                seed=11,
                generator=generator,
                policy=policy,
            )
            want = [
                _slow(
                    p,
                    i,
                    seed=11,
                    policy=policy,
                    temps=temps,
                    top_ps=top_ps,
                    max_new_tokens=24,
                    generator=generator,
                )
                for p in ODD_IDS
                for i in range(3)
            ]
            assert _got(keys) == want
            assert keys.prompt_rows.tolist() == [n for n in range(len(ODD_IDS)) for _ in range(3)]
            assert [keys.params[i].temperature for i in keys.indices] == [
                temps[i % len(temps)] for _ in ODD_IDS for i in range(3)
            ]


def test_random_keys_equal_the_row_formulas() -> None:
    rng = random.Random(15)
    alphabet = 'ab"\\\n\t\x01é中🙂 {}[],:0'
    for _ in range(25):
        pids = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(rng.randint(1, 9))
        ]
        k = rng.randint(1, 6)
        temps = [rng.choice([0.0, 0.5, 0.7, 1.0, 1.25, 2.0]) for _ in range(rng.randint(1, 3))]
        top_ps = [rng.choice([0.1, 0.9, 0.95, 1.0]) for _ in range(rng.randint(1, 3))]
        seed = rng.choice([0, 7, -3, 2**40 + 1])
        policy = rng.choice([None, "p", 'q"é'])
        generator = rng.choice(["g", "openai:gpt-4o-mini@http://h:1/v1", "scripted:é\\"])
        tokens = rng.choice([1, 16, 4096])
        only = None
        if rng.random() < 0.4:
            only = {(p, i) for p in pids for i in range(k) if rng.random() < 0.5}
        keys = sample_keys(
            pids,
            k=k,
            temperatures=temps,
            top_ps=top_ps,
            max_new_tokens=tokens,
            seed=seed,
            generator=generator,
            policy=policy,
            only=only,
        )
        want = [
            _slow(
                p,
                i,
                seed=seed,
                policy=policy,
                temps=temps,
                top_ps=top_ps,
                max_new_tokens=tokens,
                generator=generator,
            )
            for p in pids
            for i in range(k)
            if only is None or (p, i) in only
        ]
        assert _got(keys) == want
        assert len(keys) == len(want)


def test_only_restricts_the_samples() -> None:
    keys = sample_keys(
        ["p", "q"],
        k=2,
        temperatures=[0.7],
        top_ps=[1.0],
        max_new_tokens=8,
        seed=0,
        generator="g",
        only={("q", 1)},
    )
    assert (keys.prompt_ids.to_pylist(), keys.indices.tolist(), keys.prompt_rows.tolist()) == (
        ["q"],
        [1],
        [1],
    )
    none = sample_keys(
        ["p"], k=2, temperatures=[0.7], top_ps=[1.0], max_new_tokens=8, seed=0, generator="g", only=set()
    )
    assert len(none) == 0 and none.ids.to_pylist() == [] and none.samplings.to_pylist() == []


def test_digests_read_like_hexdigest_and_seed_for() -> None:
    rng = random.Random(3)
    blobs = [rng.randbytes(rng.randint(0, 80)) for _ in range(200)] + [b"", b"\xff" * 64]
    digests = [hashlib.sha256(b).digest() for b in blobs]
    assert hex_ids(digests).to_pylist() == [hashlib.sha256(b).hexdigest()[:16] for b in blobs]
    assert digest_seeds(digests).tolist() == [
        int.from_bytes(hashlib.sha256(b).digest()[:8], "big") & ((1 << 63) - 1) for b in blobs
    ]
    assert hex_ids([]).to_pylist() == [] and digest_seeds([]).tolist() == []
