"""`prefmill annotate --publish`: the verdict log becomes a new `judgments` version.

The verdicts (each annotator's first answer per item; skips left out) are written as a verdicts file in
the `human` judge's import format (``_annotations/published/verdicts-<sha>.jsonl``: annotator,
candidate ids, prefers_first or score, criterion, rationale, order, seconds) and read back with that
judge's reader (``tasks/evaluation/human.py``), so a published verdict and an imported one are the same
rows (kind 'human', judge ``human:<annotator>``; point scores scaled to [0, 1] like LLM judges').

The new version takes the build's judgments shards by reference and adds one shard of human rows; its
parents are the build's prompts, candidates and judgments versions; its manifest keeps the fidelity
report (with inter-annotator and human-vs-judge agreement). A ref (``annotated`` by default) points at
it, and ``reinstantiate`` rebuilds the recipe's outputs over it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefmill.annotate.store import AnnotationStore
from prefmill.errors import InputError
from prefmill.storage import Manifest, Parent, Store, version_id
from prefmill.tasks.evaluation.fidelity import fidelity_report
from prefmill.tasks.evaluation.human import human_judgments

STAGE = "annotation"
ANNOTATION_CODE_VERSION = "1"


@dataclass
class Published:
    manifest: Manifest
    base: Manifest
    verdicts: int
    annotators: list[str]
    skipped_other_build: int
    file: Path
    report: dict[str, Any]


def import_rows(verdicts: list[dict[str, Any]], known: set[str]) -> tuple[list[dict[str, Any]], int]:
    """Rows of the human import format from the verdict log (first answer per annotator and item, no
    skips, only verdicts on candidates in ``known``); the number left out as another build's."""
    seen: set[tuple[str, str]] = set()
    rows: list[dict[str, Any]] = []
    other = 0
    for v in verdicts:
        key = (str(v.get("annotator")), str(v.get("item_id")))
        if key in seen:
            continue
        seen.add(key)
        if v.get("choice") == "skip":
            continue
        cids = [c for c in (v.get("candidate_id"), v.get("other_candidate_id")) if c is not None]
        if not cids or any(c not in known for c in cids):
            other += 1
            continue
        base = {"annotator": v["annotator"], "candidate_id": v["candidate_id"], "seconds": v.get("seconds")}
        if v.get("rationale"):
            base["rationale"] = v["rationale"]
        if v.get("kind") == "pair":
            rows.append(
                base
                | {
                    "other_candidate_id": v["other_candidate_id"],
                    "prefers_first": v["prefers_first"],
                    "order": v.get("order"),
                    "criterion": "overall",
                }
            )
            continue
        lo, hi = (v.get("scale") or [0, 1])[:2]
        for crit, score in sorted((v.get("scores") or {}).items()):
            scaled = (float(score) - lo) / (hi - lo) if hi > lo else float(score)
            rows.append(base | {"score": round(scaled, 6), "criterion": crit})
    return rows, other


def _base(store: Store, judgments: Manifest) -> Manifest:
    """The build's own judgments: a version published here before names its base in its config."""
    if judgments.stage == STAGE and (b := judgments.config.get("base_judgments")):
        return store.manifest(judgments.dataset, "judgments", b)
    return judgments


def publish(store: Store, folder: Path, dataset: str, ref: str, out_ref: str = "annotated") -> Published:
    """Publish the verdicts of ``folder`` against the build ``ref`` names; point ``out_ref`` at it."""
    versions = {
        t: store.resolve_version(dataset, t, None, ref) for t in ("prompts", "candidates", "judgments")
    }
    base = _base(store, versions["judgments"])
    cands = store.read_arrow(versions["candidates"], ["candidate_id", "prompt_id"])
    rows, other = import_rows(
        AnnotationStore(folder).verdicts(), set(cands.column("candidate_id").to_pylist())
    )
    if not rows:
        raise InputError(
            f"{folder / 'verdicts.jsonl'}: no verdicts on the candidates of ref '{ref}' to publish; "
            "label some items with `prefmill annotate` first"
        )
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    sha = hashlib.sha256(text.encode()).hexdigest()
    path = folder / "published" / f"verdicts-{sha[:16]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text)
    human = human_judgments(path, "jsonl", cands)
    annotators = sorted({r["annotator"] for r in rows})
    borrowed = {i: f.version or base.version for i, f in enumerate(base.files)}
    parents = [
        Parent("prompts", versions["prompts"].version),
        Parent("candidates", versions["candidates"].version),
    ]
    parents += [Parent("judgments", v) for v in sorted(set(borrowed.values()) | {base.version})]
    config = {"base_judgments": base.version, "verdicts_sha256": sha, "annotators": annotators}
    vid = version_id("judgments", STAGE, ANNOTATION_CODE_VERSION, config, parents)
    writer = store.open_version(dataset, "judgments", vid)
    judged = pa.concat_tables([store.read_arrow(base), human.cast(store.read_arrow(base).schema)])
    full = store.read_arrow(versions["candidates"], ["candidate_id", "response", "n_tokens", "generator"])
    report = fidelity_report(judged, full)
    if writer.manifest() is None:
        writer.write_shard(len(base.files), human, stats={"human_verdicts": human.num_rows})
    manifest = writer.publish(
        stage=STAGE,
        code_version=ANNOTATION_CODE_VERSION,
        config=config,
        parents=parents,
        borrowed=borrowed,
        extra_stats={"fidelity": report},
    )
    tables = {t: m.version for t, m in versions.items()} | {"judgments": manifest.version}
    store.write_ref(dataset, out_ref, tables, info={"annotated_from": ref, "human_verdicts": human.num_rows})
    return Published(manifest, base, human.num_rows, annotators, other, path, report)
