"""Incremental builds: when the prompt pool grows (same recipe otherwise), only the new prompts go
through synthesis and evaluation.

A shard covers prompts ``[i*shard_size, (i+1)*shard_size)`` of the prompts table, and prompts keep
their order (sources are read in order, duplicates keep their first place), so appended prompts leave
the earlier shards' prompt lists unchanged. For the candidates version about to be made:

- shard ``i`` whose prompt ids are exactly those of shard ``i`` of an earlier candidates version with
  the same synthesis config is **borrowed by reference** (the manifest points at the earlier file);
- shard ``i`` whose earlier counterpart held a prefix of its prompts (the old last, partial shard) is
  **topped up**: its earlier rows are kept and only the missing prompts are generated;
- every other shard is generated as usual.

Judgments follow the candidates: judgments shard ``i`` judges candidates file ``i``, so when that file
is the very file an earlier judgments version (same evaluation config) judged, and the prompts' reference
answers of that shard are unchanged, the judgments shard is borrowed too. The borrowed versions become
parents of the new versions, so lineage shows both the new prompts and the versions rows came from,
and gc keeps them. Rows come out the same as a fresh full build (seeds follow prompt and sample, not
the shard), and so does the version id.

This module only decides what is reused; the synthesis flow declares the borrowed shards and the
topped-up ones (``flows.synthesis_shards.top_up``) to the stage skeleton.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefmill.flows.common import latest_retry, log
from prefmill.storage import Manifest, Parent, Store


@dataclass
class Reuse:
    """What a new version takes from earlier ones: ``borrowed`` shard -> version whose file it points
    at; ``top_up`` shard -> (version, shard) whose rows it keeps, generating only the missing prompts."""

    borrowed: dict[int, str] = field(default_factory=dict)
    top_up: dict[int, tuple[str, int]] = field(default_factory=dict)

    def parents(self, table: str) -> list[Parent]:
        versions = {*self.borrowed.values(), *(v for v, _ in self.top_up.values())}
        return [Parent(table, v) for v in sorted(versions)]

    def __bool__(self) -> bool:
        return bool(self.borrowed or self.top_up)


def _shard_ids(ids: list[str], index: int, size: int) -> list[str]:
    return ids[index * size : (index + 1) * size]


def _prompt_ids(store: Store, m: Manifest) -> list[str]:
    return store.read_arrow(m, columns=["prompt_id"]).column("prompt_id").to_pylist()


def _file_prompt_ids(store: Store, path: str) -> list[str]:
    ids = pq.read_table(path, columns=["prompt_id"], filesystem=store.fs).column("prompt_id")
    return pc.unique(ids).to_pylist()  # rows are in prompt order, then sample order


def candidates_reuse(
    store: Store, dataset: str, config: dict[str, Any], prompts: Manifest, shard_size: int, n_shards: int
) -> Reuse:
    """Shards of the new candidates version that earlier versions with the same config already hold."""
    earlier = [
        latest_retry(store, m)
        for m in reversed(store.versions(dataset, "candidates"))  # newest first
        if m.config == config and "retry_of" not in m.config
    ]
    reuse = Reuse()
    if not earlier:
        return reuse
    new_ids = _prompt_ids(store, prompts)
    for old in earlier:
        parent = next((p.version for p in old.parents if p.table == "prompts"), None)
        old_prompts = store.find_manifest(dataset, "prompts", parent) if parent else None
        if old_prompts is None or old_prompts.version == prompts.version:
            continue
        old_ids = _prompt_ids(store, old_prompts)
        paths = store.file_paths(old)
        for i in range(min(n_shards, len(old.files))):
            if i in reuse.borrowed or i in reuse.top_up:
                continue
            want, had = _shard_ids(new_ids, i, shard_size), _shard_ids(old_ids, i, shard_size)
            if not had or _file_prompt_ids(store, paths[i]) != had:
                continue  # a shard whose rows are not what its prompt slice says is never reused
            if had == want:
                reuse.borrowed[i] = old.files[i].version or old.version
            elif want[: len(had)] == had:
                reuse.top_up[i] = (old.version, i)
    if reuse:
        log().info(
            "synthesis: incremental: %d shards borrowed, %d topped up from earlier candidates",
            len(reuse.borrowed),
            len(reuse.top_up),
        )
    return reuse


def judgments_reuse(
    store: Store, dataset: str, config: dict[str, Any], prompts: Manifest, candidates: Manifest
) -> Reuse:
    """Shards of the new judgments version whose candidates file an earlier judgments version with the
    same config already judged (with the same reference answers)."""
    reuse = Reuse()
    mine = [(f.version or candidates.version, f.path) for f in candidates.files]
    if not any(f.version for f in candidates.files):
        return reuse  # nothing borrowed: every candidates file is new
    refs = _references(store, prompts)
    for old in reversed(store.versions(dataset, "judgments")):
        if old.config != config:
            continue
        parents = {p.table: p.version for p in old.parents}
        judged = store.find_manifest(dataset, "candidates", parents.get("candidates", ""))
        old_prompts = store.find_manifest(dataset, "prompts", parents.get("prompts", ""))
        if judged is None or old_prompts is None:
            continue
        old_refs = _references(store, old_prompts)
        theirs = [(f.version or judged.version, f.path) for f in judged.files]
        for i, key in enumerate(mine):
            if i in reuse.borrowed or i >= len(theirs) or theirs[i] != key or i >= len(old.files):
                continue
            ids = _file_prompt_ids(store, store.file_paths(candidates)[i])
            if all(refs.get(p) == old_refs.get(p) for p in ids):
                reuse.borrowed[i] = old.files[i].version or old.version
    if reuse:
        log().info("evaluation: incremental: %d shards borrowed from earlier judgments", len(reuse.borrowed))
    return reuse


def _references(store: Store, prompts: Manifest) -> dict[str, Any]:
    t = store.read_arrow(prompts, columns=["prompt_id", "reference"])
    return dict(zip(t.column("prompt_id").to_pylist(), t.column("reference").to_pylist(), strict=True))
