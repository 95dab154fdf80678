"""A cheap, length-normalised quality heuristic for responses to prompts without a reference.

It is a weak signal meant for smoke tests and cold starts (quickstart), not a substitute for a judge
model. For one candidate with response ``r``:

* ``words``  = the lower-cased ``\\w+`` tokens of ``r``;
* ``L``      = ``n_tokens`` when set and > 0, else the number of words (at least 1);
* ``m``      = the median of ``ln L`` over the non-empty candidates of the same prompt, so
  ``exp(m)`` is the prompt's median candidate length measured in log space;
* ``len``    = ``exp(-0.5 * ((ln L - m) / ln 4) ** 2)``: 1 at the median, 0.88 at twice or half of
  it, 0.61 at four times, 0.25 at ten times -- shorter and longer are penalised alike, so length alone
  earns nothing;
* ``rep``    = distinct word 3-grams / all word 3-grams (1 when there are fewer than three words):
  the share of repeated 3-grams is taken off;
* ``stop``   = 0.5 when ``finish_reason == 'length'`` (truncated), else 1;
* ``score``  = ``len * rep * stop``, in [0, 1]; an empty or whitespace-only response scores 0.

``rationale`` shows the parts (``len 0.82 · rep 0.95 · stop 1.00``); ``raw`` holds them as JSON with
``L`` and ``exp(m)``. Because ``len`` compares a candidate with its siblings, every candidate of a
prompt must be in the same shard (the synthesis stage shards by prompt, so they are).
"""

from __future__ import annotations

import math

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.verifiers import point_judgments

HEURISTIC_JUDGE = "heuristic"
#: Width of the length term in log space: a candidate ``LENGTH_SCALE`` times off the median gets
#: ``exp(-0.5)`` ~ 0.61.
LENGTH_SCALE = 4.0
TRUNCATED_FACTOR = 0.5
PART_COLUMNS = ["candidate_id", "prompt_id", "empty", "length", "median", "len", "rep", "stop", "score"]


def heuristic_scores(cands: pa.Table) -> pl.DataFrame:
    """The heuristic's parts per candidate: columns candidate_id, prompt_id, empty, length, median,
    len, rep, stop, score (see the module docstring)."""
    for name, typ in (("finish_reason", pa.string()), ("n_tokens", pa.int64())):
        if name not in cands.column_names:
            cands = cands.append_column(name, pa.nulls(cands.num_rows, typ))
    df = pl.from_arrow(cands.select(["candidate_id", "prompt_id", "response", "finish_reason", "n_tokens"]))
    assert isinstance(df, pl.DataFrame)
    # All-null columns arrive with the Null dtype; give them their real types.
    df = df.with_columns(
        pl.col("candidate_id", "prompt_id", "response", "finish_reason").cast(pl.String),
        pl.col("n_tokens").cast(pl.Float64),
    )
    response = pl.col("response")
    words = response.fill_null("").str.to_lowercase().str.extract_all(r"\w+")
    df = df.with_row_index("_row").with_columns(
        empty=response.is_null() | (response.str.strip_chars().str.len_chars() == 0),
        n_words=words.list.len().cast(pl.Float64),
    )
    # Word 3-grams, one row per word: a 3-gram starts at a word when the word two ahead is in the same
    # response. Exploding is about twice as fast as list.eval over each response's words.
    word = pl.col("w")
    grams = (
        df.select("_row", w=words)
        .explode("w")
        .with_columns(
            gram=pl.concat_str([word, word.shift(-1), word.shift(-2)], separator=" "),
            complete=pl.col("_row").shift(-2) == pl.col("_row"),
        )
        .filter(pl.col("complete"))
        .group_by("_row")
        .agg(n_tri=pl.len().cast(pl.Float64), n_uniq=pl.col("gram").n_unique().cast(pl.Float64))
    )
    df = (
        df.join(grams, on="_row", how="left")
        .sort("_row")
        .with_columns(pl.col("n_tri", "n_uniq").fill_null(0.0))
    )
    n_tokens = pl.col("n_tokens")
    length = pl.when(n_tokens > 0).then(n_tokens).otherwise(pl.col("n_words")).clip(lower_bound=1.0)
    df = df.with_columns(log_len=pl.when(pl.col("empty")).then(None).otherwise(length.log()))
    df = df.with_columns(
        length=length,
        log_median=pl.col("log_len").median().over("prompt_id"),
    )
    len_term = (-0.5 * ((pl.col("log_len") - pl.col("log_median")) / math.log(LENGTH_SCALE)) ** 2).exp()
    rep_term = pl.when(pl.col("n_tri") > 0).then(pl.col("n_uniq") / pl.col("n_tri")).otherwise(1.0)
    stop_term = pl.when(pl.col("finish_reason") == "length").then(TRUNCATED_FACTOR).otherwise(1.0)
    df = df.with_columns(
        len=pl.when(pl.col("empty")).then(0.0).otherwise(len_term),
        rep=pl.when(pl.col("empty")).then(0.0).otherwise(rep_term),
        stop=stop_term.fill_null(1.0),
        median=pl.col("log_median").exp(),
    )
    df = df.with_columns(
        score=pl.when(pl.col("empty")).then(0.0).otherwise(pl.col("len") * pl.col("rep") * pl.col("stop"))
    )
    return df.select(PART_COLUMNS)


def _fixed2(name: str) -> pl.Expr:
    """A column in [0, 1] as text with two decimals (``0.5`` -> ``"0.50"``), vectorised."""
    cents = (pl.col(name) * 100).round().cast(pl.Int64)
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def heuristic_judge(cands: pa.Table) -> pa.Table:
    """Point-wise ``heuristic`` judgments (kind 'verifier') for the rows of ``cands`` without a reference.

    ``cands`` needs candidate_id, prompt_id, response, finish_reason and n_tokens; a ``reference``
    column, when present, selects the rows where it is null, and an ``error`` column, when present,
    drops the rows where it is set.
    """
    if "reference" in cands.column_names:
        cands = cands.filter(pc.is_null(cands.column("reference")))
    if "error" in cands.column_names:
        cands = cands.filter(pc.is_null(cands.column("error")))
    if cands.num_rows == 0:
        return empty_table("judgments")
    parts = heuristic_scores(cands)
    empty = pl.col("empty")
    text = parts.select(
        rationale=pl.when(empty)
        .then(pl.lit("empty response"))
        .otherwise(pl.format("len {} · rep {} · stop {}", _fixed2("len"), _fixed2("rep"), _fixed2("stop"))),
        raw=pl.when(empty)
        .then(pl.lit('{"empty":true}'))
        .otherwise(
            pl.struct(
                len=pl.col("len").round(4),
                length=pl.col("length"),
                median_length=pl.col("median").round(2),
                rep=pl.col("rep").round(4),
                stop=pl.col("stop"),
            ).struct.json_encode()
        ),
    )
    return point_judgments(
        HEURISTIC_JUDGE,
        parts.get_column("candidate_id").to_arrow(),
        parts.get_column("prompt_id").to_arrow(),
        parts.get_column("score").to_arrow(),
        text.get_column("rationale").to_arrow(),
        text.get_column("raw").to_arrow(),
        pa.nulls(parts.height, pa.string()),
    )
