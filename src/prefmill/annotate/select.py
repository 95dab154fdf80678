"""Active selection: which candidate pairs deserve a human's time under a labelling budget.

Pure functions over Polars frames of ``judgments`` and ``candidates``. For every pair (a < b) of usable
candidates of a prompt, ``pair_uncertainty`` measures how unsure the judges are:

* ``p_j`` -- each judge's P(a is better): point judges ``sigmoid(1.7 * (s_a - s_b) / sd)`` with ``sd``
  the judge's score deviation on that criterion (a constant judge says 0.5); pair judges the mean of
  their verdicts over both orders (the swap-debiased preference, ``prefers_first`` turned to a's side);
* ``spread`` -- the standard deviation of ``p_j`` over judges (ensemble disagreement, in [0, 0.5]);
* ``swap`` -- pair judges' swap inconsistency: the share of them whose verdicts in the two orders
  pick different sides (a tie is a side);
* ``entropy`` -- binary entropy (bits) of ``p``, the mean of ``p_j``;
* ``margin`` -- ``|p - 0.5| * 2`` (small margins are uncertain).

``uncertainty = entropy + (1 - margin) + 0.5 * spread + 0.25 * swap`` (at most 2.5; pairs no judge
saw get 2.5). The weights were chosen on ``benchmarks/active_selection.py``'s simulated judges, where
entropy and margin carry most of the signal and spread / swap add a little. ``select_pairs`` ranks by
it with a diversity term: the r-th pair picked from one prompt counts ``uncertainty * diversity ** r``,
so one prompt does not take the budget; ``method='random'`` is the baseline (a seeded shuffle).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import polars as pl
import pyarrow as pa

Method = Literal["uncertainty", "random"]
METHODS: tuple[str, ...] = ("uncertainty", "random")
KEY = ["prompt_id", "a", "b"]
_EPS = 1e-9
MAX_UNCERTAINTY = 2.5
_SLOPE = 1.7  # logistic ~ normal CDF: P(a better) of a standardised score difference


def _side(p: pl.Expr) -> pl.Expr:
    return pl.when(p > 0.5 + _EPS).then(1).when(p < 0.5 - _EPS).then(-1).otherwise(0)


def _df(table: pa.Table | pl.DataFrame) -> pl.DataFrame:
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def candidate_pairs(candidates: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """prompt_id, a, b: every two usable candidates (no error, a response) of a prompt, a < b."""
    df = _df(candidates)
    ok = df.filter(pl.col("response").is_not_null())
    if "error" in ok.columns:
        ok = ok.filter(pl.col("error").is_null())
    ok = ok.select("prompt_id", "candidate_id").unique()
    left = ok.rename({"candidate_id": "a"})
    right = ok.rename({"candidate_id": "b"})
    return left.join(right, on="prompt_id").filter(pl.col("a") < pl.col("b")).sort(KEY)


def judge_preferences(judgments: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """prompt_id, a, b, judge, p (P(a better)), swap (1.0 when the two orders pick different sides;
    null without both orders).
    Human rows and rows with a parse error are left out (selection decides what humans see)."""
    df = _df(judgments).filter(pl.col("parse_error").is_null() & (pl.col("kind") != "human"))
    crit = pl.col("criterion").fill_null("overall")
    point = (
        df.filter((pl.col("mode") == "point") & pl.col("score").is_not_null())
        .with_columns(criterion=crit)
        .group_by("judge", "criterion", "prompt_id", "candidate_id")
        .agg(pl.col("score").mean())
    )
    sd = pl.col("score").std(ddof=0).over("judge", "criterion")
    point = point.with_columns(s=pl.when(sd > _EPS).then(pl.col("score") / sd).otherwise(0.0))
    left = point.select("judge", "criterion", "prompt_id", a="candidate_id", sa="s")
    right = point.select("judge", "criterion", "prompt_id", b="candidate_id", sb="s")
    from_points = (
        left.join(right, on=["judge", "criterion", "prompt_id"])
        .filter(pl.col("a") < pl.col("b"))
        .group_by("judge", *KEY)
        .agg(p=(1.0 / (1.0 + (-_SLOPE * (pl.col("sa") - pl.col("sb"))).exp())).mean())
        .with_columns(swap=pl.lit(None, pl.Float64))
    )
    pair = (
        df.filter((pl.col("mode") == "pair") & pl.col("prefers_first").is_not_null())
        .with_columns(
            a=pl.min_horizontal("candidate_id", "other_candidate_id"),
            b=pl.max_horizontal("candidate_id", "other_candidate_id"),
        )
        .with_columns(
            pa_=pl.when(pl.col("candidate_id") == pl.col("a"))
            .then(pl.col("prefers_first"))
            .otherwise(1.0 - pl.col("prefers_first")),
            shown_a_first=(pl.col("candidate_id") == pl.col("a")),
        )
    )
    from_pairs = pair.group_by("judge", *KEY).agg(
        p=pl.col("pa_").mean(),
        p_ab=pl.col("pa_").filter(pl.col("shown_a_first")).mean(),
        p_ba=pl.col("pa_").filter(~pl.col("shown_a_first")).mean(),
    )
    flipped = (_side(pl.col("p_ab")) != _side(pl.col("p_ba"))).cast(pl.Float64)
    from_pairs = from_pairs.select("judge", *KEY, "p", swap=flipped)
    schema = {"judge": pl.String, "prompt_id": pl.String, "a": pl.String, "b": pl.String}
    frames = [f.cast({**schema, "p": pl.Float64, "swap": pl.Float64}) for f in (from_points, from_pairs)]
    return pl.concat(frames).sort("judge", *KEY)


def pair_uncertainty(judgments: pa.Table | pl.DataFrame, candidates: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Every candidate pair with p, spread, swap, entropy, margin, n_judges and uncertainty."""
    pairs = candidate_pairs(candidates)
    prefs = judge_preferences(judgments)
    agg = prefs.group_by(KEY).agg(
        p=pl.col("p").mean(),
        spread=pl.col("p").std(ddof=0),
        swap=pl.col("swap").mean(),
        n_judges=pl.col("judge").n_unique(),
    )
    out = pairs.join(agg, on=KEY, how="left").with_columns(
        pl.col("p").fill_null(0.5),
        pl.col("spread").fill_null(0.5),
        pl.col("swap").fill_null(0.0),
        pl.col("n_judges").fill_null(0).cast(pl.Int64),
    )
    p = pl.col("p").clip(_EPS, 1 - _EPS)
    entropy = -(p * p.log(2) + (1 - p) * (1 - p).log(2))
    out = out.with_columns(entropy=entropy, margin=(pl.col("p") - 0.5).abs() * 2)
    u = pl.col("entropy") + (1 - pl.col("margin")) + 0.5 * pl.col("spread") + 0.25 * pl.col("swap")
    out = out.with_columns(
        uncertainty=pl.when(pl.col("n_judges") == 0).then(MAX_UNCERTAINTY).otherwise(u),
        swap=pl.when(pl.col("n_judges") == 0).then(None).otherwise(pl.col("swap")),
    )
    return out.sort(KEY)


def _shuffle_key(seed: int, *parts: str) -> str:
    return hashlib.sha256("\x1f".join((str(seed), *parts)).encode()).hexdigest()


def select_pairs(
    scored: pl.DataFrame,
    budget: int | None,
    method: Method = "uncertainty",
    *,
    diversity: float = 0.5,
    seed: int = 0,
) -> pl.DataFrame:
    """The first ``budget`` pairs (all when None) in the order humans should see them, with ``rank``.
    ``scored`` has prompt_id, a, b and (for 'uncertainty') uncertainty, as ``pair_uncertainty`` gives."""
    if method not in METHODS:
        raise ValueError(f"unknown selection '{method}'; use one of {', '.join(METHODS)}")
    if budget is not None and budget < 0:
        raise ValueError("budget must be >= 0")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError("diversity must be in [0, 1]")
    tie = pl.Series(
        "tie", [_shuffle_key(seed, *row) for row in scored.select(KEY).iter_rows()], dtype=pl.String
    )
    df = scored.with_columns(tie)
    if method == "random":
        df = df.sort("tie")
    else:
        df = df.sort(["prompt_id", "uncertainty", "tie"], descending=[False, True, False])
        df = df.with_columns(within=pl.int_range(pl.len()).over("prompt_id"))
        df = df.with_columns(priority=pl.col("uncertainty") * pl.lit(diversity) ** pl.col("within"))
        df = df.sort(["priority", "uncertainty", "tie"], descending=[True, True, False])
        df = df.drop("within", "priority")
    if budget is not None:
        df = df.head(budget)
    return df.drop("tie").with_row_index("rank")
