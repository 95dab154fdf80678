"""Active selection: how many human labels each selection needs to reach a target agreement with gold.

Run::

    .venv/bin/python benchmarks/active_selection.py [--prompts 2000] [--k 4] [--target 0.95]
                                                    [--seeds 5] [--annotator-error 0.0] [--smoke]

A synthetic build: ``--prompts`` prompts with ``--k`` candidates each, every candidate with a hidden
quality ``q ~ N(0, 1)``. The gold label of a pair is the side of the better quality; the gold labels are
written to a JSONL file and read back (``prefmill.records.read_jsonl``), and simulated annotators answer
from it (wrong with probability ``--annotator-error``). Three simulated judges write `judgments` rows
in prefmill's schema: two point judges (``q`` plus Gaussian noise of sd 0.8 and 1.2) and a pair judge
in both orders with a position bias (``sigmoid((q_a - q_b) / 0.7 + noise) + 0.15`` for the response
shown first, clipped).

A pair's label without a human is the judges' swap-debiased mean preference (``select.py``'s ``p``;
a tie counts one half against gold). Each selection orders all pairs (``select_pairs``, no budget);
labelling the first ``n`` replaces their labels by the annotators'. The benchmark reports, per
selection, the labels needed until the agreement of all pairs' labels with gold reaches ``--target``
(random: the median over ``--seeds`` shuffles), and the ratio random / uncertainty (the
ActiveUltraFeedback claim is equal quality from 1/6 of the labels, a ratio of 6). ``margin``
(smallest |p - 0.5| first, the simplest thing a user would write) is a second baseline. With every
pair labelled each selection gives the very same labels (checked). ``--smoke`` (150 prompts, 3 seeds)
runs in seconds; CI runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from prefmill.annotate.select import pair_uncertainty, select_pairs
from prefmill.records import read_jsonl


def synthetic(prompts: int, k: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """(candidates, judgments, quality) of a synthetic build."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=prompts * k)
    cid = [f"c{i:07d}" for i in range(prompts * k)]
    pid = [f"p{i // k:06d}" for i in range(prompts * k)]
    cands = pl.DataFrame({"candidate_id": cid, "prompt_id": pid, "response": ["r"] * len(cid), "error": None})
    rows: dict[str, list[object]] = {c: [] for c in ("judge", "kind", "mode", "prompt_id", "candidate_id")}
    rows |= {"other_candidate_id": [], "criterion": [], "score": [], "prefers_first": [], "parse_error": []}

    def add(
        judge: str, mode: str, p: str, a: str, b: str | None, score: float | None, pref: float | None
    ) -> None:
        for col, v in zip(
            rows,
            (judge, "llm", mode, p, a, b, "overall", score, pref, None),
            strict=True,
        ):
            rows[col].append(v)

    for name, sd in (("point-a", 0.8), ("point-b", 1.2)):
        noisy = q + rng.normal(scale=sd, size=q.size)
        for i in range(q.size):
            add(name, "point", pid[i], cid[i], None, float(noisy[i]), None)
    for p in range(prompts):
        for x in range(p * k, p * k + k):
            for y in range(x + 1, p * k + k):
                for first, second in ((x, y), (y, x)):
                    z = (q[first] - q[second]) / 0.7 + rng.normal(scale=1.0)
                    pref = float(np.clip(1 / (1 + np.exp(-z)) + 0.15, 0.0, 1.0))
                    add("pair", "pair", pid[first], cid[first], cid[second], None, pref)
    judgments = pl.DataFrame(rows, schema_overrides={"score": pl.Float64, "prefers_first": pl.Float64})
    return cands, judgments, q


def write_gold(path: Path, scored: pl.DataFrame, quality: dict[str, float]) -> None:
    with path.open("w") as f:
        for p, a, b in scored.select("prompt_id", "a", "b").iter_rows():
            f.write(
                json.dumps({"prompt_id": p, "a": a, "b": b, "label": 1 if quality[a] > quality[b] else -1})
                + "\n"
            )


def read_gold(path: Path) -> dict[tuple[str, str], int]:
    return {(r["a"], r["b"]): int(r["label"]) for _, r in read_jsonl(path)}


def labels_needed(
    order: list[tuple[str, str]], base: dict, human: dict, gold: dict, target: float
) -> int | None:
    """The first n whose labels (humans on the first n of ``order``, judges elsewhere) agree with gold
    on a share >= target; None when even all labels do not."""

    def agree(label: float, truth: int) -> float:
        return 0.5 if label == 0 else float(np.sign(label) == truth)

    total = sum(agree(base[k], gold[k]) for k in gold)
    n_pairs = len(gold)
    if total / n_pairs >= target:
        return 0
    for n, key in enumerate(order, start=1):
        total += agree(human[key], gold[key]) - agree(base[key], gold[key])
        if total / n_pairs >= target - 1e-12:
            return n
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--annotator-error", type=float, default=0.0)
    ap.add_argument("--diversity", type=float, default=0.5)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.prompts, args.seeds = 150, 3
    cands, judgments, q = synthetic(args.prompts, args.k, seed=7)
    quality = dict(zip(cands["candidate_id"].to_list(), q.tolist(), strict=True))
    started = time.perf_counter()
    scored = pair_uncertainty(judgments, cands)
    ranked = select_pairs(scored, None, "uncertainty", diversity=args.diversity)
    select_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        gold_path = Path(tmp) / "gold.jsonl"
        write_gold(gold_path, scored, quality)
        gold = read_gold(gold_path)
    rng = np.random.default_rng(11)
    human = {
        k: (-v if rng.random() < args.annotator_error else v) for k, v in gold.items()
    }  # simulated annotators answer from the gold file
    base = {(a, b): float(np.sign(p - 0.5)) for a, b, p in scored.select("a", "b", "p").iter_rows()}
    key = list(zip(ranked["a"].to_list(), ranked["b"].to_list(), strict=True))
    margin = scored.sort((pl.col("p") - 0.5).abs(), "a", "b")
    orders = {
        "uncertainty": key,
        "margin": list(zip(margin["a"].to_list(), margin["b"].to_list(), strict=True)),
    }
    needed = {name: labels_needed(o, base, human, gold, args.target) for name, o in orders.items()}
    random_runs = []
    for s in range(args.seeds):
        r = select_pairs(scored, None, "random", seed=s)
        random_runs.append(
            labels_needed(
                list(zip(r["a"].to_list(), r["b"].to_list(), strict=True)), base, human, gold, args.target
            )
        )
    # every selection labels the same pairs when the budget covers all: the same final labels
    final = {name: sorted(o) for name, o in orders.items()}
    assert final["uncertainty"] == final["margin"] == sorted(gold), "selections disagree on the pair set"
    n = len(gold)
    baseline = sum(0.5 if base[k] == 0 else float(np.sign(base[k]) == gold[k]) for k in gold) / n
    rand = [x if x is not None else n for x in random_runs]
    needed["random"] = int(statistics.median(rand))
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# active selection ({when}, {platform.machine()}, Python {platform.python_version()})")
    print(
        f"pairs {n} ({args.prompts} prompts x {args.k} candidates); judges' agreement with gold "
        f"{baseline:.3f}; target {args.target}; annotator error {args.annotator_error}; "
        f"diversity {args.diversity}; scoring + ranking all pairs {select_s:.2f} s"
    )
    for name in ("uncertainty", "margin", "random"):
        v = needed[name]
        share = f"{v / n:.1%}" if v is not None else "n/a"
        print(f"  {name:<12} labels to reach target: {v if v is not None else 'never'} ({share} of pairs)")
    if needed["uncertainty"]:
        print(
            f"ratio random / uncertainty: {needed['random'] / needed['uncertainty']:.2f}x fewer labels "
            f"(random runs: {random_runs})"
        )


if __name__ == "__main__":
    main()
