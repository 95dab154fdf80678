"""Length bias of the judges, fitted and removed as AlpacaEval's length-controlled win rate does.

Point scores ``s`` are regressed on ``x = ln L - mean ln L`` of the prompt's candidates and
``score_lc = s - beta * x``; pair preferences on ``d = tanh((ln L_first - ln L_other) / rms)``,
``prefers_first_lc = clip(p - gamma * d, 0, 1)`` (no intercept: swapping a pair flips both; ``rms`` is
the root mean square of the log-length differences, the same whichever response a row lists first).
``L`` is ``n_tokens`` (characters when null).

A pass/fail verdict is not controlled: a verifier's scores, or any judge's that take at most two
values, keep their value (``controlled`` false, no coefficient). Subtracting a length term from a 0/1
score only breaks its ties by length, which turns every such judge into one that "prefers short
answers" (a strongly negative controlled correlation) whatever it does.

The correlation with length of a pair judge is measured per unordered pair -- P(one response is
better) averaged over the orders judged, against its log-length difference -- and counted in both
orientations, so it does not depend on which response a row lists first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from prefmill.tasks.evaluation.fidelity_stats import _clean, spearman
from prefmill.tasks.evaluation.fidelity_tables import lengths, usable

_COLS = ["judgment_id", "judge", "criterion", "mode", "value", "length", "prompt_id", "lo", "hi", "flip"]


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            **dict.fromkeys(_COLS, pl.String),
            "value": pl.Float64,
            "length": pl.Float64,
            "flip": pl.Boolean,
            "controlled": pl.Boolean,
            "coef": pl.Float64,
            "value_lc": pl.Float64,
        }
    )


def length_controlled(
    judgments: pa.Table | pl.DataFrame,
    candidates: pa.Table | pl.DataFrame,
    *,
    used: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every usable row with its length term removed: judgment_id, judge, criterion, mode, value
    (score or prefers_first), length (x or d), controlled (false: a pass/fail verdict, kept as it
    is), coef (beta or gamma of its judge/criterion, 0 when not controlled), value_lc; pair rows also
    prompt_id, lo < hi (the two candidates) and flip (the row lists ``hi`` first). ``used``:
    ``usable(judgments)`` when the caller has it already."""
    df = usable(judgments) if used is None else used
    lens = lengths(candidates).select("candidate_id", "log_len")
    group = ("judge", "criterion")
    point = (
        df.filter(pl.col("mode") == "point")
        .join(lens, on="candidate_id", how="inner")
        .with_columns(
            value=pl.col("score"),
            length=pl.col("log_len") - pl.col("log_len").mean().over("judge", "criterion", "prompt_id"),
            lo=pl.lit(None, pl.String),
            hi=pl.lit(None, pl.String),
            flip=pl.lit(None, pl.Boolean),
            controlled=(pl.col("kind") != "verifier").all().over(group)
            & (pl.col("score").n_unique().over(group) > 2),
        )
    )
    other = lens.rename({"candidate_id": "other_candidate_id", "log_len": "other_len"})
    pair = (
        df.filter(pl.col("mode") == "pair")
        .join(lens, on="candidate_id", how="inner")
        .join(other, on="other_candidate_id", how="inner")
        .with_columns(diff=pl.col("log_len") - pl.col("other_len"))
    )
    rms = (pl.col("diff") ** 2).mean().over(group).sqrt()
    pair = pair.with_columns(
        value=pl.col("prefers_first"),
        length=(pl.col("diff") / rms).fill_nan(0.0).tanh(),
        lo=pl.min_horizontal("candidate_id", "other_candidate_id"),
        hi=pl.max_horizontal("candidate_id", "other_candidate_id"),
        flip=pl.col("candidate_id") > pl.col("other_candidate_id"),
        controlled=pl.lit(True),
    )
    parts = [p.select(*_COLS, "controlled") for p in (point, pair) if p.height]
    if not parts:
        return _empty()
    both = pl.concat(parts).with_columns(pl.col("length").fill_null(0.0).fill_nan(0.0))
    centre = pl.when(pl.col("mode") == "pair").then(0.5).otherwise(pl.col("value").mean().over(group))
    fitted = ((pl.col("value") - centre) * pl.col("length")).sum().over(group) / (
        pl.col("length") ** 2
    ).sum().over(group)
    both = both.with_columns(
        coef=pl.when(pl.col("controlled")).then(fitted.fill_nan(0.0).fill_null(0.0)).otherwise(0.0)
    )
    lc = pl.col("value") - pl.col("coef") * pl.col("length")
    return both.with_columns(value_lc=pl.when(pl.col("mode") == "pair").then(lc.clip(0.0, 1.0)).otherwise(lc))


def _pair_correlation(g: pl.DataFrame, column: str) -> float | None:
    """Spearman of P(lo better) (``column`` oriented, averaged over the orders) with the length
    difference, each unordered pair counted in both orientations."""
    sign = pl.when(pl.col("flip")).then(-1.0).otherwise(1.0)
    oriented = g.with_columns(
        v=pl.when(pl.col("flip")).then(1.0 - pl.col(column)).otherwise(pl.col(column)),
        d=pl.col("length") * sign,
    )
    per_pair = oriented.group_by("prompt_id", "lo", "hi").agg(pl.col("v").mean(), pl.col("d").mean())
    v, d = per_pair.get_column("v").to_numpy(), per_pair.get_column("d").to_numpy()
    return spearman(np.concatenate([v, 1.0 - v]), np.concatenate([d, -d]))


def length_control(
    judgments: pa.Table | pl.DataFrame,
    candidates: pa.Table | pl.DataFrame,
    *,
    used: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """judge -> criterion -> {n, controlled, coef, spearman_raw, spearman_lc} (correlations with
    length; coef and spearman_lc are None for a pass/fail verdict, which is not controlled)."""
    lc = length_controlled(judgments, candidates, used=used)
    out: dict[str, Any] = {}
    for (judge, criterion, mode), g in lc.group_by("judge", "criterion", "mode", maintain_order=True):
        controlled = bool(g.get_column("controlled").all())
        if mode == "pair":
            raw, adjusted = _pair_correlation(g, "value"), _pair_correlation(g, "value_lc")
        else:
            length = g.get_column("length").to_numpy()
            raw = spearman(g.get_column("value").to_numpy(), length)
            adjusted = spearman(g.get_column("value_lc").to_numpy(), length)
        out.setdefault(judge, {})[criterion] = {
            "n": g.height,
            "controlled": controlled,
            "coef": _clean(g.get_column("coef")[0]) if controlled else None,
            "spearman_raw": _clean(raw),
            "spearman_lc": _clean(adjusted) if controlled else None,
        }
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}
