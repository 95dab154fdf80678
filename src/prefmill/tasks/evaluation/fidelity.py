"""The fidelity report of a judgments version: how far its judges can be trusted.

Pure functions over the ``judgments`` and ``candidates`` tables (Polars / NumPy):

* ``position_consistency`` / ``position_bias`` (``fidelity_position``) -- pair judges: share of
  pairs judged in both orders whose two verdicts pick the same side (a tie counts as a side); ties
  and the share of decided verdicts favouring the response shown first;
* ``length_control`` (``fidelity_length``) -- per judge and criterion, the length term fitted and
  removed as AlpacaEval's length-controlled win rate does, and the Spearman correlation of the raw
  and the controlled values with length (pass/fail verdicts are not controlled);
* ``pair_labels`` -- every judge's verdict on every candidate pair of a prompt as -1 / 0 / +1 (point
  judges: the sign of the score difference; pair judges: the side of the mean preference over both
  orders; ``orders`` says how many orders were parsed), the common ground of ``agreement`` (Cohen's
  kappa for each two judges, Fleiss' kappa over the items all judges labelled, Spearman of point
  scores) and ``gold_agreement`` (a judge's labels against gold labels: verifiers other than the
  heuristic, human verdicts; a tie counts one half;
  for pair judges also over the pairs parsed in both orders -- swap-debiased -- and over those
  parsed in one order only, separately);
* ``self_preference`` -- a judge whose model family (``family``) is that of a generator: its mean
  score on that family's candidates and on the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from prefmill.errors import FidelityError
from prefmill.tasks.evaluation.fidelity_gate import check_thresholds, enforce
from prefmill.tasks.evaluation.fidelity_length import length_control, length_controlled
from prefmill.tasks.evaluation.fidelity_position import position_bias, position_consistency, swap_pairs
from prefmill.tasks.evaluation.fidelity_stats import _EPS, _clean, cohen_kappa, fleiss_kappa, spearman
from prefmill.tasks.evaluation.fidelity_tables import _df, _side, lengths, usable
from prefmill.tasks.evaluation.human_agreement import human_agreement
from prefmill.tasks.evaluation.judges.registry import GOLD_ROW_KINDS as GOLD_KINDS  # gold by default
from prefmill.tasks.evaluation.judges.registry import NOT_GOLD_NAMES as NOT_GOLD  # but the heuristic

__all__ = [
    "FidelityError",
    "agreement",
    "check_thresholds",
    "cohen_kappa",
    "enforce",
    "family",
    "fidelity_report",
    "fleiss_kappa",
    "gold_agreement",
    "length_control",
    "length_controlled",
    "lengths",
    "pair_labels",
    "position_bias",
    "position_consistency",
    "self_preference",
    "spearman",
    "swap_pairs",
    "usable",
]

# -- pairwise labels, agreement, gold -------------------------------------------------------------


def pair_labels(judgments: pa.Table | pl.DataFrame, *, used: pl.DataFrame | None = None) -> pl.DataFrame:
    """judge, kind, prompt_id, a, b (a < b), criterion, label (+1: a better, -1: b better, 0: tie),
    orders (pair judges: how many orders of the pair were parsed, 1 or 2; null for point judges).
    ``used``: ``usable(judgments)`` when the caller has it already."""
    df = usable(judgments) if used is None else used
    point = (
        df.filter(pl.col("mode") == "point")
        .group_by("judge", "kind", "prompt_id", "candidate_id", "criterion")
        .agg(pl.col("score").mean())
    )
    left = point.rename({"candidate_id": "a", "score": "sa"})
    right = point.rename({"candidate_id": "b", "score": "sb"}).select(
        "judge", "prompt_id", "criterion", "b", "sb"
    )
    from_points = (
        left.join(right, on=["judge", "prompt_id", "criterion"], how="inner")
        .filter(pl.col("a") < pl.col("b"))
        .select(
            "judge",
            "kind",
            "prompt_id",
            "a",
            "b",
            "criterion",
            label=_side(0.5 + pl.col("sa") - pl.col("sb")),
            orders=pl.lit(None, pl.Int64),
        )
    )
    pairs = (
        df.filter(pl.col("mode") == "pair")
        .with_columns(
            a=pl.min_horizontal("candidate_id", "other_candidate_id"),
            b=pl.max_horizontal("candidate_id", "other_candidate_id"),
            p=pl.when(pl.col("candidate_id") <= pl.col("other_candidate_id"))
            .then(pl.col("prefers_first"))
            .otherwise(1.0 - pl.col("prefers_first")),
        )
        .group_by("judge", "kind", "prompt_id", "a", "b", "criterion")
        .agg(pl.col("p").mean(), orders=pl.col("candidate_id").n_unique())
        .select(
            "judge", "kind", "prompt_id", "a", "b", "criterion", label=_side(pl.col("p")), orders="orders"
        )
    )
    cast = {"label": pl.Int64, "orders": pl.Int64}
    out = pl.concat([from_points.cast(cast), pairs.cast(cast)])
    return out.sort("judge", "prompt_id", "a", "b", "criterion")


def _gold_judges(labels: pl.DataFrame, gold: Sequence[str] | None) -> list[str]:
    if gold is not None:
        return sorted(set(gold))
    kinds = labels.select("judge", "kind").unique()
    return sorted(j for j, k in kinds.iter_rows() if k in GOLD_KINDS and j not in NOT_GOLD)


def gold_agreement(labels: pl.DataFrame, gold: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """judge -> {n, rate, gold}: agreement with gold labels on the pairs gold decides (tie = 1/2); a pair
    judge's also ``both_orders`` / ``single_order`` -> {n, rate}: the same over the pairs it parsed in
    both orders (its position bias cancelled) and over those it parsed in one order only."""
    golds = _gold_judges(labels, gold)
    if not golds or labels.height == 0:
        return {}
    key = ["prompt_id", "a", "b", "criterion"]
    truth = (
        labels.filter(pl.col("judge").is_in(golds))
        .group_by(key)
        .agg(truth=pl.col("label").mean())
        .filter(pl.col("truth").abs() > _EPS)
        .with_columns(truth=pl.col("truth").sign())
    )
    judged = labels.filter(~pl.col("judge").is_in(golds)).join(truth, on=key, how="inner")
    scored = judged.with_columns(
        agree=pl.when(pl.col("label") == 0)
        .then(0.5)
        .otherwise((pl.col("label") == pl.col("truth")).cast(pl.Float64))
    )
    out: dict[str, dict[str, Any]] = {}
    for row in (
        scored.group_by("judge")
        .agg(n=pl.len(), rate=pl.col("agree").mean())
        .sort("judge")
        .iter_rows(named=True)
    ):
        out[row["judge"]] = {"n": row["n"], "rate": _clean(row["rate"]), "gold": golds}
    paired = scored.filter(pl.col("orders").is_not_null())
    for (judge,), g in paired.group_by("judge"):
        for name, part in (
            ("both_orders", g.filter(pl.col("orders") >= 2)),
            ("single_order", g.filter(pl.col("orders") < 2)),
        ):
            mean = part.get_column("agree").mean() if part.height else None
            out[str(judge)][name] = {"n": part.height, "rate": _clean(mean)}  # type: ignore[arg-type]
    return out


def agreement(
    labels: pl.DataFrame, judgments: pa.Table | pl.DataFrame, *, used: pl.DataFrame | None = None
) -> dict[str, Any]:
    """Inter-judge agreement: for each two judges, Cohen's kappa on the pairs both labelled and
    Spearman of their point scores on the candidates both scored; Fleiss' kappa over the pairs every
    judge labelled (three judges or more)."""
    judges = sorted(labels.get_column("judge").unique().to_list()) if labels.height else []
    key = ["prompt_id", "a", "b", "criterion"]
    scores = (
        (usable(judgments) if used is None else used)
        .filter(pl.col("mode") == "point")
        .group_by("judge", "candidate_id", "criterion")
        .agg(pl.col("score").mean())
    )
    pairs = []
    for i, x in enumerate(judges):
        for y in judges[i + 1 :]:
            common = (
                labels.filter(pl.col("judge") == x)
                .select(*key, lx="label")
                .join(labels.filter(pl.col("judge") == y).select(*key, ly="label"), on=key, how="inner")
            )
            sc = (
                scores.filter(pl.col("judge") == x)
                .select("candidate_id", "criterion", sx="score")
                .join(
                    scores.filter(pl.col("judge") == y).select("candidate_id", "criterion", sy="score"),
                    on=["candidate_id", "criterion"],
                    how="inner",
                )
            )
            pairs.append(
                {
                    "judges": [x, y],
                    "n": common.height,
                    "cohen_kappa": _clean(
                        cohen_kappa(common.get_column("lx").to_list(), common.get_column("ly").to_list())
                    ),
                    "n_scores": sc.height,
                    "spearman": _clean(
                        spearman(sc.get_column("sx").to_numpy(), sc.get_column("sy").to_numpy())
                    ),
                }
            )
    out: dict[str, Any] = {"pairs": pairs}
    if len(judges) >= 3:
        wide = labels.group_by(key).agg(n=pl.col("judge").n_unique(), labels=pl.col("label"))
        wide = wide.filter(pl.col("n") == len(judges))
        counts = np.array(
            [[row.count(c) for c in (-1, 0, 1)] for row in wide.get_column("labels").to_list()]
        ).reshape(-1, 3)
        out["fleiss_kappa"] = {"judges": judges, "n": len(counts), "value": _clean(fleiss_kappa(counts))}
    return out


# -- self-preference ------------------------------------------------------------------------------


def family(name: str | None) -> str | None:
    """Model family of an engine spec or generator name: the letters the model's base name starts with
    (``transformers:smollm2`` and ``HuggingFaceTB/SmolLM2-135M-Instruct`` are both ``smollm``)."""
    if not name:
        return None
    model = name.split(":", 1)[1] if ":" in name.split("/")[0] else name
    model = model.split("?")[0].split("@")[0].rstrip("/")
    base = model.rsplit("/", 1)[-1].lower()
    m = re.match(r"[a-z]+", base)
    return m.group(0) if m else None


def self_preference(
    judgments: pa.Table | pl.DataFrame,
    candidates: pa.Table | pl.DataFrame,
    judge_engines: Mapping[str, str],
    *,
    used: pl.DataFrame | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Per LLM judge sharing a family with some generator: mean point score on its own family's
    candidates and on the others (when both exist). Returns (report, warnings)."""
    gens = lengths(candidates).select("candidate_id", "generator")
    families = {g: family(g) for g in gens.get_column("generator").unique().to_list()}
    used = usable(judgments) if used is None else used
    df = used.filter(pl.col("mode") == "point").join(gens, on="candidate_id", how="left")
    out, warnings = {}, []
    for judge, engine in sorted(judge_engines.items()):
        fam = family(engine)
        own = sorted(g for g, f in families.items() if g and f == fam)
        if not fam or not own:
            continue
        warnings.append(
            f"judge '{judge}' ({engine}) shares the model family '{fam}' with the generator(s) "
            f"{', '.join(own)}: it may prefer its own family's outputs (self-preference)"
        )
        rows = df.filter(pl.col("judge") == judge)
        mine = rows.filter(pl.col("generator").is_in(own)).get_column("score")
        theirs = rows.filter(~pl.col("generator").is_in(own)).get_column("score")
        entry: dict[str, Any] = {
            "family": fam,
            "generators": own,
            "n_own": mine.len(),
            "n_other": theirs.len(),
        }
        if mine.len() and theirs.len():
            entry["mean_own"] = _clean(mine.mean())  # type: ignore[arg-type]
            entry["mean_other"] = _clean(theirs.mean())  # type: ignore[arg-type]
        out[judge] = entry
    return out, warnings


# -- the report -----------------------------------------------------------------------------------


def fidelity_report(
    judgments: pa.Table | pl.DataFrame,
    candidates: pa.Table | pl.DataFrame,
    *,
    judge_engines: Mapping[str, str] | None = None,
    gold: Sequence[str] | None = None,
    calibration: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report stored in the judgments manifest (``stats.fidelity``) and printed by
    ``prefmill report fidelity``. All numbers are plain JSON (None where undefined)."""
    df = _df(judgments)
    judges: dict[str, dict[str, Any]] = {}
    if df.height:
        counts = df.group_by("judge").agg(
            kind=pl.col("kind").first(),
            mode=pl.col("mode").unique().sort().str.join(","),
            rows=pl.len(),
            parse_failures=pl.col("parse_error").is_not_null().sum(),
        )
        for row in counts.sort("judge").iter_rows(named=True):
            judges[row["judge"]] = {
                "kind": row["kind"],
                "mode": row["mode"],
                "rows": row["rows"],
                "parse_failures": int(row["parse_failures"]),
                "parse_failure_rate": _clean(row["parse_failures"] / row["rows"]),
            }
    for name, value in position_consistency(df).items():
        judges.setdefault(name, {})["position_consistency"] = value
    used = usable(df)  # the usable rows, once for every check that reads them
    for name, value in position_bias(df, used=used).items():
        judges.setdefault(name, {})["position_bias"] = value
    for name, value in length_control(df, candidates, used=used).items():
        judges.setdefault(name, {})["length"] = value
    labels = pair_labels(df, used=used)
    for name, value in gold_agreement(labels, gold).items():
        judges.setdefault(name, {})["gold_agreement"] = value
    for name, value in (calibration or {}).items():
        judges.setdefault(name, {})["calibration"] = dict(value)
    prefs, warnings = self_preference(df, candidates, judge_engines or {}, used=used)
    for name, value in prefs.items():
        judges.setdefault(name, {})["self_preference"] = value
    out = {"judges": judges, "agreement": agreement(labels, df, used=used), "warnings": warnings}
    if (human := human_agreement(labels)) is not None:  # annotators and judges vs humans
        out["human"] = human
    return out
