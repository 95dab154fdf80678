"""The batched sample keys equal the row-by-row formulas (seed_for, canonical_json, content_id)."""

from __future__ import annotations

from prefmill.ids import canonical_json, content_id, seed_for
from prefmill.tasks.synthesis.sample_keys import sample_keys


def _slow(
    pid: str, i: int, *, seed: int, policy: str | None, temps: list[float], top_ps: list[float]
) -> tuple:
    s = seed_for(seed, pid, i) if policy is None else seed_for(seed, policy, pid, i)
    sampling = canonical_json(
        {
            "temperature": temps[i % len(temps)],
            "top_p": top_ps[i % len(top_ps)],
            "max_new_tokens": 24,
            "seed": s,
        }
    )
    return pid, i, s, sampling, content_id([pid, 'scripted:"q"é', sampling, i])


def test_batched_keys_equal_the_row_formulas() -> None:
    pids = ["a1b2c3d4e5f60718", 'odd "id" é\\', "x"]
    for policy in (None, 'pol "p"'):
        for temps, top_ps in (([0.7, 1.0, 0.0], [0.95]), ([1.0], [1.0, 0.5])):
            keys = sample_keys(
                pids,
                k=3,
                temperatures=temps,
                top_ps=top_ps,
                max_new_tokens=24,
                seed=11,
                generator='scripted:"q"é',
                policy=policy,
            )
            got = list(zip(keys.prompt_ids, keys.indices, keys.seeds, keys.samplings, keys.ids, strict=True))
            want = [
                _slow(p, i, seed=11, policy=policy, temps=temps, top_ps=top_ps)
                for p in pids
                for i in range(3)
            ]
            assert got == want
            assert [p.temperature for p in keys.params] == [
                temps[i % len(temps)] for _ in pids for i in range(3)
            ]


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
    assert (keys.prompt_ids, keys.indices) == (["q"], [1])
