"""Which shards an incremental build takes from earlier versions (no model: hand-made versions).

Prompts are sharded by position, so with 5 old prompts and 15 new ones (the old 5 first) and
shard_size 4: shard 0 is borrowed, shard 1 (1 old prompt of 4) is topped up, shards 2-3 are new."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from tables import build

from prefmill.flows.incremental import candidates_reuse, judgments_reuse
from prefmill.storage import Manifest, Parent, Store

DS = "ds"
CONFIG = {"k": 1, "engine": "e"}


def _prompts(store: Store, n: int) -> Manifest:
    return store.write_version(
        DS, "prompts", build("prompts", n), stage="p", code_version="1", config={"n": n}
    )


def _candidates(store: Store, prompts: Manifest, version: str, size: int, config: dict) -> Manifest:
    ids = store.read_arrow(prompts).column("prompt_id").to_pylist()
    w = store.open_version(DS, "candidates", version)
    rows = build("candidates", len(ids), prompts=len(ids)).to_pylist()
    for i, start in enumerate(range(0, len(ids), size)):
        shard = rows[start : start + size]
        for r, pid in zip(shard, ids[start : start + size], strict=True):
            r.update(prompt_id=pid, sample_index=0, candidate_id=f"{version}-{pid}")
        w.write_shard(i, pa.Table.from_pylist(shard, schema=build("candidates", 0).schema))
    return w.publish(
        stage="synthesis", code_version="1", config=config, parents=[Parent("prompts", prompts.version)]
    )


def test_appended_prompts_borrow_full_shards_and_top_up_the_partial_one(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old_p, new_p = _prompts(store, 5), _prompts(store, 15)
    old = _candidates(store, old_p, "old", 4, CONFIG)
    reuse = candidates_reuse(store, DS, CONFIG, new_p, shard_size=4, n_shards=4)
    assert reuse.borrowed == {0: "old"} and reuse.top_up == {1: ("old", 1)}
    assert reuse.parents("candidates") == [Parent("candidates", "old")]

    # a different synthesis config, or a different shard size, reuses nothing
    assert not candidates_reuse(store, DS, {**CONFIG, "k": 2}, new_p, shard_size=4, n_shards=4)
    assert not candidates_reuse(store, DS, CONFIG, new_p, shard_size=3, n_shards=5).borrowed
    # prompts that are not an extension of the old ones (a prompt inserted in front) reuse nothing
    shifted = store.write_version(
        DS,
        "prompts",
        pa.concat_tables([build("prompts", 16).slice(15, 1), build("prompts", 15)]),
        stage="p",
        code_version="1",
        config={"shifted": True},
    )
    assert not candidates_reuse(store, DS, CONFIG, shifted, shard_size=4, n_shards=4)

    # judgments: a borrowed candidates file that an earlier judgments version judged is borrowed too
    new = store.open_version(DS, "candidates", "new")
    for i in (1, 2, 3):
        new.write_shard(i, pa.Table.from_pylist([], schema=build("candidates", 0).schema))
    new_m = new.publish(
        stage="synthesis",
        code_version="1",
        config=CONFIG,
        parents=[Parent("prompts", new_p.version), Parent("candidates", "old")],
        borrowed={0: "old"},
    )
    jw = store.open_version(DS, "judgments", "jold")
    for i in range(len(old.files)):
        jw.write_shard(i, build("judgments", 2))
    jold = jw.publish(
        stage="evaluation",
        code_version="1",
        config={"judges": ["h"]},
        parents=[Parent("prompts", old_p.version), Parent("candidates", old.version)],
    )
    reuse_j = judgments_reuse(store, DS, {"judges": ["h"]}, new_p, new_m)
    assert reuse_j.borrowed == {0: jold.version}
    assert not judgments_reuse(store, DS, {"judges": ["other"]}, new_p, new_m)
