"""The inputs of the fidelity report: the usable judgments (the definition scores.sql uses) and the
candidates' lengths, as Polars frames."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa

from prefmill.sql import define_judgment_macros
from prefmill.storage.duck import to_arrow
from prefmill.tasks.evaluation.fidelity_stats import _EPS

MODEL_KINDS = ("llm", "reward_model")  # row kinds whose verdicts come from a model


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


def _side(p: pl.Expr) -> pl.Expr:
    """+1 above one half, -1 below, 0 (a tie) at one half."""
    return pl.when(p > 0.5 + _EPS).then(1).when(p < 0.5 - _EPS).then(-1).otherwise(0)
