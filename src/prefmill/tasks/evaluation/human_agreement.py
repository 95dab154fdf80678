"""Human agreement in the fidelity report: how far annotators agree with each other (Cohen's kappa for
each two annotators, Fleiss' kappa over the items the most annotators labelled), and how far each
non-human judge agrees with the humans' majority.

Pure functions over ``pair_labels`` (judge, kind, prompt_id, a, b, criterion, label in -1 / 0 / +1):
an annotator is a judge of kind ``human`` (judge ``human:<annotator>``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from prefmill.tasks.evaluation.fidelity_stats import _clean, cohen_kappa, fleiss_kappa

KEY = ["prompt_id", "a", "b", "criterion"]


def _humans(labels: pl.DataFrame) -> list[str]:
    if labels.height == 0:
        return []
    return sorted(labels.filter(pl.col("kind") == "human").get_column("judge").unique().to_list())


def inter_annotator(labels: pl.DataFrame, humans: list[str]) -> dict[str, Any]:
    """Cohen's kappa of each two annotators on the items both labelled; Fleiss' kappa over the items
    labelled by the largest number (>= 2) of annotators that many items share."""
    pairs = []
    for i, x in enumerate(humans):
        for y in humans[i + 1 :]:
            common = (
                labels.filter(pl.col("judge") == x)
                .select(*KEY, lx="label")
                .join(labels.filter(pl.col("judge") == y).select(*KEY, ly="label"), on=KEY, how="inner")
            )
            lx, ly = common.get_column("lx").to_list(), common.get_column("ly").to_list()
            pairs.append(
                {
                    "annotators": [x, y],
                    "n": common.height,
                    "agreement": _clean(float(np.mean([p == q for p, q in zip(lx, ly, strict=True)])))
                    if lx
                    else None,
                    "cohen_kappa": _clean(cohen_kappa(lx, ly)),
                }
            )
    out: dict[str, Any] = {"annotators": humans, "pairs": pairs}
    wide = (
        labels.filter(pl.col("judge").is_in(humans))
        .group_by(KEY)
        .agg(n=pl.col("judge").n_unique(), labels=pl.col("label"))
        .filter(pl.col("n") >= 2)
    )
    if wide.height:
        # Fleiss needs the same number of raters per item: the most-rated count that has items.
        raters = int(wide.get_column("n").max())  # type: ignore[arg-type]
        same = wide.filter(pl.col("n") == raters)
        counts = np.array(
            [[row.count(c) for c in (-1, 0, 1)] for row in same.get_column("labels").to_list()]
        ).reshape(-1, 3)
        out["fleiss_kappa"] = {"raters": raters, "n": len(counts), "value": _clean(fleiss_kappa(counts))}
    return out


def human_majority(labels: pl.DataFrame, humans: list[str]) -> pl.DataFrame:
    """KEY + truth (-1 / 0 / +1: the sign of the annotators' mean label) and n_humans."""
    return (
        labels.filter(pl.col("judge").is_in(humans))
        .group_by(KEY)
        .agg(truth=pl.col("label").mean(), n_humans=pl.len())
        .with_columns(truth=pl.col("truth").sign().cast(pl.Int64))
    )


def judges_vs_humans(labels: pl.DataFrame, humans: list[str]) -> dict[str, dict[str, Any]]:
    """judge -> {n, agreement (a tie against a decided item counts 1/2), cohen_kappa} against the
    humans' majority, for every judge that is not an annotator, on the items both labelled."""
    truth = human_majority(labels, humans)
    judged = labels.filter(~pl.col("judge").is_in(humans)).join(truth, on=KEY, how="inner")
    out = {}
    for (judge,), g in judged.group_by("judge", maintain_order=True):
        lab, tru = g.get_column("label").to_list(), g.get_column("truth").to_list()
        agree = [1.0 if x == t else 0.5 if (x == 0 or t == 0) else 0.0 for x, t in zip(lab, tru, strict=True)]
        out[str(judge)] = {
            "n": g.height,
            "agreement": _clean(float(np.mean(agree))),
            "cohen_kappa": _clean(cohen_kappa(lab, tru)),
        }
    return dict(sorted(out.items()))


def human_agreement(labels: pl.DataFrame) -> dict[str, Any] | None:
    """The report's ``human`` part, or None when no judge is human."""
    humans = _humans(labels)
    if not humans:
        return None
    out = inter_annotator(labels, humans)
    out["judges_vs_humans"] = judges_vs_humans(labels, humans)
    return out


def human_records(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The report's ``human`` part as rows to print: (annotator pairs, judges vs humans, Fleiss line)."""
    human = report.get("human") or {}

    def fmt(x: Any) -> str:
        return "" if x is None else f"{x:.3f}"

    pairs = [
        {
            "annotators": " ~ ".join(p["annotators"]),
            "items": p["n"],
            "agreement": fmt(p.get("agreement")),
            "cohen_kappa": fmt(p.get("cohen_kappa")),
        }
        for p in human.get("pairs", [])
    ]
    judges = [
        {
            "judge": j,
            "items": r["n"],
            "agreement": fmt(r.get("agreement")),
            "cohen_kappa": fmt(r.get("cohen_kappa")),
        }
        for j, r in (human.get("judges_vs_humans") or {}).items()
    ]
    fleiss = human.get("fleiss_kappa")
    line = (
        f"Fleiss' kappa of the annotators over {fleiss['n']} items labelled by {fleiss['raters']}: "
        f"{fmt(fleiss.get('value'))}"
        if fleiss
        else None
    )
    return pairs, judges, line
