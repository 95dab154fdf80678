"""The items of an annotation session, made from one build (a ref's prompts, candidates, judgments):

* ``pair`` -- two responses to one prompt, in the order active selection chose (``select.py``);
  the position is randomised per annotator (``order``: 'ab' shows ``a`` first, 'ba' shows ``b``);
* ``point`` -- one response, scored on the judges' scale (an LLM judge's min_score..max_score, else
  1..5);
* ``rubric`` -- one response, one score per criterion of the prompt's rubric.

``next_item`` gives an annotator the first item they have not answered that fewer than ``per_item``
annotators have answered."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from prefmill.annotate.select import Method, pair_uncertainty, select_pairs
from prefmill.storage import Manifest, Store
from prefmill.tasks.evaluation.llm_judge import prompt_criteria

Mode = Literal["pair", "point", "rubric"]
MODES: tuple[str, ...] = ("pair", "point", "rubric")


@dataclass(frozen=True)
class Item:
    item_id: str
    kind: str
    prompt_id: str
    candidates: tuple[str, ...]
    criteria: tuple[str, ...] = ("overall",)
    uncertainty: float | None = None


@dataclass
class Build:
    """The tables of the build being annotated, in memory (what the pages show)."""

    dataset: str
    manifests: dict[str, Manifest]
    prompts: dict[str, dict[str, Any]]
    responses: dict[str, str]
    candidates: pl.DataFrame
    judgments: pl.DataFrame
    scale: tuple[int, int] = (1, 5)
    items: list[Item] = field(default_factory=list)


def item_id(kind: str, candidates: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps([kind, *candidates]).encode()).hexdigest()[:16]


def _judge_scale(m: Manifest) -> tuple[int, int]:
    for j in m.config.get("judges", []):
        if isinstance(j, dict) and "min_score" in j and "max_score" in j:
            return int(j["min_score"]), int(j["max_score"])
    return 1, 5


def _prompt_text(messages: list[dict[str, Any]] | None) -> str:
    return "\n\n".join(f"[{m['role']}] {m['content']}" for m in (messages or []))


def load_build(store: Store, dataset: str, ref: str) -> Build:
    """The ref's prompts, candidates and judgments (its versions are the published judgments' parents)."""
    manifests = {
        t: store.resolve_version(dataset, t, None, ref) for t in ("prompts", "candidates", "judgments")
    }
    prompts = {
        r["prompt_id"]: {
            "text": _prompt_text(r["messages"]),
            "reference": r["reference"],
            "rubric": r["rubric"],
        }
        for r in store.read_arrow(manifests["prompts"]).to_pylist()
    }
    cands = pl.from_arrow(
        store.read_arrow(manifests["candidates"], ["candidate_id", "prompt_id", "response", "error"])
    )
    assert isinstance(cands, pl.DataFrame)
    judgments = pl.from_arrow(store.read_arrow(manifests["judgments"]))
    assert isinstance(judgments, pl.DataFrame)
    return Build(
        dataset=dataset,
        manifests=manifests,
        prompts=prompts,
        responses=dict(zip(cands["candidate_id"].to_list(), cands["response"].to_list(), strict=True)),
        candidates=cands,
        judgments=judgments,
        scale=_judge_scale(manifests["judgments"]),
    )


def make_items(
    build: Build, mode: Mode, *, budget: int | None, select: Method, diversity: float = 0.5, seed: int = 0
) -> list[Item]:
    """The session's items, in the order they are handed out."""
    cands = build.candidates
    if mode == "pair":
        scored = pair_uncertainty(build.judgments, cands)
        chosen = select_pairs(scored, budget, select, diversity=diversity, seed=seed)
        return [
            Item(
                item_id("pair", (r["a"], r["b"])),
                "pair",
                r["prompt_id"],
                (r["a"], r["b"]),
                ("overall",),
                r["uncertainty"],
            )
            for r in chosen.iter_rows(named=True)
        ]
    usable = cands.filter(pl.col("error").is_null() & pl.col("response").is_not_null()).sort(
        "prompt_id", "candidate_id"
    )
    if select == "random":
        usable = usable.with_columns(
            k=pl.col("candidate_id").map_elements(
                lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest(), return_dtype=pl.String
            )
        ).sort("k")
    out = []
    for r in usable.iter_rows(named=True):
        crit: tuple[str, ...] = ("overall",)
        if mode == "rubric":
            crit = tuple(
                prompt_criteria(build.prompts.get(r["prompt_id"], {}).get("rubric"), {"overall": ""})
            )
        cid = (r["candidate_id"],)
        out.append(Item(item_id(mode, cid), mode, r["prompt_id"], cid, crit))
    return out[:budget] if budget is not None else out


def order_for(annotator: str, item: Item) -> str:
    """'ab' or 'ba': the position a pair is shown to ``annotator`` (the same on every visit)."""
    h = hashlib.sha256(f"{annotator}\x1f{item.item_id}".encode()).digest()
    return "ab" if h[0] % 2 == 0 else "ba"


@dataclass
class Progress:
    done: int
    total: int


def answered_by(verdicts: list[dict[str, Any]]) -> tuple[dict[str, set[str]], Counter[str]]:
    """(annotator -> item ids they answered or skipped, item id -> annotators who answered it)."""
    seen: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for v in verdicts:
        ann, iid = str(v.get("annotator")), str(v.get("item_id"))
        if iid in seen.setdefault(ann, set()):
            continue
        seen[ann].add(iid)
        if v.get("choice") != "skip":
            counts[iid] += 1
    return seen, counts


def next_item(
    items: list[Item], verdicts: list[dict[str, Any]], annotator: str, per_item: int
) -> tuple[Item | None, Progress]:
    """The next item for ``annotator`` and their progress (answered / answered + still open to them)."""
    seen, counts = answered_by(verdicts)
    mine = seen.get(annotator, set())
    ids = {i.item_id for i in items}
    done = len(mine & ids)
    open_ = [i for i in items if i.item_id not in mine and counts[i.item_id] < per_item]
    return (open_[0] if open_ else None), Progress(done, done + len(open_))
