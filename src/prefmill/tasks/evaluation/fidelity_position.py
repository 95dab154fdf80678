"""Position bias of pair judges: how often the two orders of a pair agree, and how often a verdict
favours whichever response was shown first."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from prefmill.tasks.evaluation.fidelity_stats import _clean
from prefmill.tasks.evaluation.fidelity_tables import _judgments_query, _side, usable


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


def position_bias(
    judgments: pa.Table | pl.DataFrame, *, used: pl.DataFrame | None = None
) -> dict[str, dict[str, Any]]:
    """judge -> {verdicts, first, second, ties, tie_rate, n, first_rate} over its usable pair rows:
    ``first`` verdicts prefer the response shown first, ``second`` the other one, ``ties`` neither;
    ``first_rate`` = first / (first + second) (``n`` of them), 0.5 for a judge without position bias,
    1.0 for one that always answers "A", 0.0 for one that always answers "B"."""
    rows = (usable(judgments) if used is None else used).filter(pl.col("mode") == "pair")
    out = {}
    counted = (
        rows.with_columns(side=_side(pl.col("prefers_first")))
        .group_by("judge")
        .agg(
            verdicts=pl.len(),
            first=(pl.col("side") == 1).sum(),
            second=(pl.col("side") == -1).sum(),
            ties=(pl.col("side") == 0).sum(),
        )
    )
    for row in counted.sort("judge").iter_rows(named=True):
        decided = int(row["first"]) + int(row["second"])
        out[row["judge"]] = {
            "verdicts": row["verdicts"],
            "first": int(row["first"]),
            "second": int(row["second"]),
            "ties": int(row["ties"]),
            "tie_rate": _clean(row["ties"] / row["verdicts"]),
            "n": decided,
            "first_rate": _clean(row["first"] / decided) if decided else None,
        }
    return out
