"""The fidelity report of a judgments version: how far its judges can be trusted.

Pure functions over the ``judgments`` and ``candidates`` tables (Polars / NumPy):

* ``position_consistency`` -- pair judges: share of pairs judged in both orders whose two verdicts
  pick the same side (a tie counts as a side);
* ``length_control`` -- per judge and criterion, the length term fitted and removed as AlpacaEval's
  length-controlled win rate does: point scores ``s`` are regressed on ``x = ln L - mean ln L`` of the
  prompt's candidates and ``score_lc = s - beta * x``; pair preferences on
  ``d = tanh((ln L_first - ln L_other) / sd)``, ``prefers_first_lc = clip(p - gamma * d, 0, 1)``
  (no intercept: swapping a pair flips both). ``L`` is ``n_tokens`` (characters when null). The report
  keeps beta / gamma and the Spearman correlation of the raw and the controlled values with length;
  ``length_controlled`` gives the controlled value of every row;
* ``pair_labels`` -- every judge's verdict on every candidate pair of a prompt as -1 / 0 / +1 (point
  judges: the sign of the score difference; pair judges: the side of the mean preference over both
  orders), the common ground of ``agreement`` (Cohen's kappa for each two judges, Fleiss' kappa over
  the items all judges labelled, Spearman of point scores) and ``gold_agreement`` (a judge's labels
  against gold labels: verifiers other than the heuristic, human verdicts; a tie counts one half);
* ``self_preference`` -- a judge whose model family (``family``) is that of a generator: its mean
  score on that family's candidates and on the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from prefmill.errors import FidelityError
from prefmill.sql import define_judgment_macros
from prefmill.storage.duck import to_arrow
from prefmill.tasks.evaluation.fidelity_stats import _EPS, _clean, cohen_kappa, fleiss_kappa, spearman
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
    "position_consistency",
    "self_preference",
    "spearman",
    "swap_pairs",
    "usable",
]

# -- inputs ---------------------------------------------------------------------------------------


def _df(table: pa.Table | pl.DataFrame) -> pl.DataFrame:
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def _judgments_query(judgments: pa.Table | pl.DataFrame, sql: str) -> pl.DataFrame:
    """Run ``sql`` over ``judgments`` with the usable-judgment macros (sql/usable_judgments.sql)."""
    data = _df(judgments).with_row_index("__row").to_arrow()
    con = duckdb.connect()
    try:
        con.register("judgments", data)
        define_judgment_macros(con)
        out = pl.from_arrow(to_arrow(con.sql(sql)))
    finally:
        con.close()
    assert isinstance(out, pl.DataFrame)
    return out


def usable(judgments: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """The usable judgments (``usable_judgments()``, the definition scores.sql uses), in input order."""
    return _judgments_query(judgments, "SELECT * EXCLUDE (__row) FROM usable_judgments() ORDER BY __row")


def lengths(candidates: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """candidate_id, generator, log_len (ln of n_tokens, or of characters when n_tokens is null)."""
    df = _df(candidates)
    chars = pl.col("response").cast(pl.String).fill_null("").str.len_chars().cast(pl.Float64)
    tokens = pl.col("n_tokens").cast(pl.Float64) if "n_tokens" in df.columns else pl.lit(None, pl.Float64)
    gen = pl.col("generator").cast(pl.String) if "generator" in df.columns else pl.lit(None, pl.String)
    return df.select(
        pl.col("candidate_id").cast(pl.String),
        generator=gen,
        log_len=pl.when(tokens > 0).then(tokens).otherwise(chars).clip(lower_bound=1.0).log(),
    )


# -- position consistency -------------------------------------------------------------------------


def _side(p: pl.Expr) -> pl.Expr:
    return pl.when(p > 0.5 + _EPS).then(1).when(p < 0.5 - _EPS).then(-1).otherwise(0)


def swap_pairs(judgments: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Pair verdicts judged in both orders (``swap_pairs()``, the implementation scores.sql and the
    report use): judge, prompt_id, candidate_id < other_candidate_id, criterion, ab and ba (P(candidate_id
    is better) read from each order's rows) and consistent (both on the same side of 0.5)."""
    return _judgments_query(
        judgments,
        "SELECT judge, prompt_id, lo AS candidate_id, hi AS other_candidate_id, criterion, p_ab AS ab, "
        "p_ba AS ba, consistent FROM swap_pairs() "
        "ORDER BY judge, prompt_id, candidate_id, other_candidate_id, criterion",
    )


def position_consistency(judgments: pa.Table | pl.DataFrame) -> dict[str, dict[str, Any]]:
    """judge -> {pairs, consistent, rate} over the pairs judged in both orders."""
    both = swap_pairs(judgments)
    out = {}
    for row in (
        both.group_by("judge")
        .agg(pairs=pl.len(), consistent=pl.col("consistent").sum())
        .iter_rows(named=True)
    ):
        out[row["judge"]] = {
            "pairs": row["pairs"],
            "consistent": int(row["consistent"]),
            "rate": _clean(row["consistent"] / row["pairs"]),
        }
    return out


# -- length control -------------------------------------------------------------------------------


def length_controlled(
    judgments: pa.Table | pl.DataFrame, candidates: pa.Table | pl.DataFrame
) -> pl.DataFrame:
    """Every usable row with its length term removed: judgment_id, judge, criterion, mode, value
    (score or prefers_first), length (x or d), value_lc, coef (beta or gamma of its judge/criterion)."""
    df = usable(judgments)
    lens = lengths(candidates).select("candidate_id", "log_len")
    point = (
        df.filter(pl.col("mode") == "point")
        .join(lens, on="candidate_id", how="inner")
        .with_columns(
            value=pl.col("score"),
            length=pl.col("log_len") - pl.col("log_len").mean().over("judge", "criterion", "prompt_id"),
        )
    )
    other = lens.rename({"candidate_id": "other_candidate_id", "log_len": "other_len"})
    pair = (
        df.filter(pl.col("mode") == "pair")
        .join(lens, on="candidate_id", how="inner")
        .join(other, on="other_candidate_id", how="inner")
        .with_columns(diff=pl.col("log_len") - pl.col("other_len"))
    )
    pair = pair.with_columns(
        value=pl.col("prefers_first"),
        length=(pl.col("diff") / pl.col("diff").std(ddof=0).over("judge", "criterion")).fill_nan(0.0).tanh(),
    )
    cols = ["judgment_id", "judge", "criterion", "mode", "value", "length"]
    parts = [p.select(cols) for p in (point, pair) if p.height]
    if not parts:
        return pl.DataFrame(
            schema={
                **dict.fromkeys(cols, pl.String),
                "value": pl.Float64,
                "length": pl.Float64,
                "value_lc": pl.Float64,
                "coef": pl.Float64,
            }
        )
    both = pl.concat(parts).with_columns(pl.col("length").fill_null(0.0))
    centre = (
        pl.when(pl.col("mode") == "pair")
        .then(0.5)
        .otherwise(pl.col("value").mean().over("judge", "criterion"))
    )
    both = both.with_columns(
        coef=((pl.col("value") - centre) * pl.col("length")).sum().over("judge", "criterion")
        / (pl.col("length") ** 2).sum().over("judge", "criterion")
    ).with_columns(pl.col("coef").fill_nan(0.0).fill_null(0.0))
    lc = pl.col("value") - pl.col("coef") * pl.col("length")
    return both.with_columns(value_lc=pl.when(pl.col("mode") == "pair").then(lc.clip(0.0, 1.0)).otherwise(lc))


def length_control(judgments: pa.Table | pl.DataFrame, candidates: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """judge -> criterion -> {n, coef, spearman_raw, spearman_lc} (correlations with length)."""
    lc = length_controlled(judgments, candidates)
    out: dict[str, Any] = {}
    for (judge, criterion), g in lc.group_by("judge", "criterion", maintain_order=True):
        length = g.get_column("length").to_numpy()
        out.setdefault(judge, {})[criterion] = {
            "n": g.height,
            "coef": _clean(g.get_column("coef")[0]),
            "spearman_raw": _clean(spearman(g.get_column("value").to_numpy(), length)),
            "spearman_lc": _clean(spearman(g.get_column("value_lc").to_numpy(), length)),
        }
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


# -- pairwise labels, agreement, gold -------------------------------------------------------------


def pair_labels(judgments: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """judge, kind, prompt_id, a, b (a < b), criterion, label (+1: a better, -1: b better, 0: tie)."""
    df = usable(judgments)
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
        .agg(pl.col("p").mean())
        .select("judge", "kind", "prompt_id", "a", "b", "criterion", label=_side(pl.col("p")))
    )
    out = pl.concat([from_points.cast({"label": pl.Int64}), pairs.cast({"label": pl.Int64})])
    return out.sort("judge", "prompt_id", "a", "b", "criterion")


def _gold_judges(labels: pl.DataFrame, gold: Sequence[str] | None) -> list[str]:
    if gold is not None:
        return sorted(set(gold))
    kinds = labels.select("judge", "kind").unique()
    return sorted(j for j, k in kinds.iter_rows() if k in GOLD_KINDS and j not in NOT_GOLD)


def gold_agreement(labels: pl.DataFrame, gold: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """judge -> {n, rate, gold}: agreement with gold labels on the pairs gold decides (tie = 1/2)."""
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
    out = {}
    for row in (
        scored.group_by("judge")
        .agg(n=pl.len(), rate=pl.col("agree").mean())
        .sort("judge")
        .iter_rows(named=True)
    ):
        out[row["judge"]] = {"n": row["n"], "rate": _clean(row["rate"]), "gold": golds}
    return out


def agreement(labels: pl.DataFrame, judgments: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """Inter-judge agreement: for each two judges, Cohen's kappa on the pairs both labelled and
    Spearman of their point scores on the candidates both scored; Fleiss' kappa over the pairs every
    judge labelled (three judges or more)."""
    judges = sorted(labels.get_column("judge").unique().to_list()) if labels.height else []
    key = ["prompt_id", "a", "b", "criterion"]
    scores = (
        usable(judgments)
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
) -> tuple[dict[str, Any], list[str]]:
    """Per LLM judge sharing a family with some generator: mean point score on its own family's
    candidates and on the others (when both exist). Returns (report, warnings)."""
    gens = lengths(candidates).select("candidate_id", "generator")
    families = {g: family(g) for g in gens.get_column("generator").unique().to_list()}
    df = usable(judgments).filter(pl.col("mode") == "point").join(gens, on="candidate_id", how="left")
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
    for name, value in length_control(df, candidates).items():
        judges.setdefault(name, {})["length"] = value
    labels = pair_labels(df)
    for name, value in gold_agreement(labels, gold).items():
        judges.setdefault(name, {})["gold_agreement"] = value
    for name, value in (calibration or {}).items():
        judges.setdefault(name, {})["calibration"] = dict(value)
    prefs, warnings = self_preference(df, candidates, judge_engines or {})
    for name, value in prefs.items():
        judges.setdefault(name, {})["self_preference"] = value
    out = {"judges": judges, "agreement": agreement(labels, df), "warnings": warnings}
    if (human := human_agreement(labels)) is not None:  # annotators and judges vs humans
        out["human"] = human
    return out


def check_thresholds(report: Mapping[str, Any], thresholds: Any) -> list[str]:
    """Every threshold a judge of ``report`` fails, one message each (empty: all pass)."""
    problems = []
    for judge, r in sorted(report.get("judges", {}).items()):
        checks: list[tuple[str, float | None, str, float | None]] = []
        if (pc := r.get("position_consistency")) is not None:
            checks.append(
                (
                    "position consistency",
                    pc.get("rate"),
                    "min_position_consistency",
                    thresholds.min_position_consistency,
                )
            )
        if "parse_failure_rate" in r:
            checks.append(
                (
                    "parse failure rate",
                    r["parse_failure_rate"],
                    "max_parse_failure_rate",
                    thresholds.max_parse_failure_rate,
                )
            )
        gold = (r.get("calibration") or {}).get("accuracy", (r.get("gold_agreement") or {}).get("rate"))
        if gold is not None:
            checks.append(("gold agreement", gold, "min_gold_agreement", thresholds.min_gold_agreement))
        raw = [
            abs(v["spearman_raw"])
            for v in (r.get("length") or {}).values()
            if v.get("spearman_raw") is not None
        ]
        if raw:
            checks.append(
                ("length correlation", max(raw), "max_length_correlation", thresholds.max_length_correlation)
            )
        for metric, value, field, limit in checks:
            if limit is None or value is None:
                continue
            low = field.startswith("min_")
            if (value < limit) if low else (value > limit):
                word = "too inconsistent" if "consistency" in field else "fails a fidelity check"
                problems.append(
                    f"judge '{judge}' {word}: {metric} {value:.3f} {'<' if low else '>'} "
                    f"evaluation.fidelity.{field} {limit}"
                )
    return problems


def enforce(report: Mapping[str, Any], thresholds: Any, where: str) -> None:
    """Raise ``FidelityError`` naming every failed threshold."""
    problems = check_thresholds(report, thresholds)
    if problems:
        raise FidelityError(
            f"{where}: " + "; ".join(problems) + " -- instantiation did not run; fix the judge, or relax "
            "the threshold in the recipe (`prefmill report fidelity` shows the whole report)"
        )
