"""Collective judgment: a meta-judge resolves only the candidates on which the ensemble disagrees.

``disagreements`` finds, per (candidate, criterion), the point-wise scores of the other judges (each
judge's mean, all scores in [0, 1]) and keeps the items whose spread ``max - min`` exceeds the
threshold and that at least two judges scored. ``meta_judge`` shows the meta-judge each such response
with the other judges' verdicts and writes one point row per item (judge = its name, kind 'llm').
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from prefmill.engines.base import Engine
from prefmill.ids import seed_for
from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.llm_judge import (
    GRANULARITY,
    KIND,
    POINT_FORMAT,
    Ask,
    _engine,
    _need,
    _point_parser,
    _rows,
    _stated,
    ask_all,
    conversation_text,
    history,
    json_schema,
    judgments_table,
    last_user,
    load_template,
    scaled,
)
from prefmill.tasks.evaluation.llm_settings import MetaSettings


def disagreements(prior: pa.Table, threshold: float, judges: list[str] | None = None) -> pl.DataFrame:
    """Items the ensemble disagrees on: candidate_id, prompt_id, criterion, spread, n_judges, and
    ``verdicts`` (list of {judge, score, rationale}); only usable point-wise outcome rows count."""
    df = pl.from_arrow(prior)
    assert isinstance(df, pl.DataFrame)
    if df.height == 0:
        return pl.DataFrame()
    df = df.filter(
        (pl.col("mode") == "point")
        & (pl.col("granularity") == GRANULARITY)
        & pl.col("parse_error").is_null()
        & pl.col("score").is_not_null()
    )
    if judges:
        df = df.filter(pl.col("judge").is_in(judges))
    per_judge = df.group_by("prompt_id", "candidate_id", "criterion", "judge").agg(
        pl.col("score").mean(), pl.col("rationale").first()
    )
    items = per_judge.group_by("prompt_id", "candidate_id", "criterion").agg(
        spread=pl.col("score").max() - pl.col("score").min(),
        n_judges=pl.len(),
        verdicts=pl.struct("judge", "score", "rationale").sort_by("judge"),
    )
    return items.filter((pl.col("n_judges") >= 2) & (pl.col("spread") > threshold)).sort(
        "prompt_id", "candidate_id", "criterion"
    )


def meta_judge(
    config: MetaSettings, cands: pa.Table, prior: pa.Table, engine: Engine | None = None
) -> pa.Table:
    """Resolve the disagreements of ``prior`` (the other judges' rows of this shard)."""
    _need(cands, f"meta judge {config.name}", ("candidate_id", "prompt_id", "response", "messages"))
    others = [j for j in config.judges if j != config.name] or None
    prior_df = pl.from_arrow(prior)
    if isinstance(prior_df, pl.DataFrame) and prior_df.height:
        prior = prior_df.filter(pl.col("judge") != config.name).to_arrow()
    items = disagreements(prior, config.threshold, others)
    if items.height == 0:
        return empty_table("judgments")
    by_id = {r["candidate_id"]: r for r in _rows(cands)}
    template = load_template("meta", config.template)
    lo, hi = float(config.min_score), float(config.max_score)
    schema = json_schema("point", (), config.min_score, config.max_score)
    asks: list[Ask] = []
    units: list[dict[str, Any]] = []
    for item in items.iter_rows(named=True):
        r = by_id.get(item["candidate_id"])
        if r is None:
            continue
        text = template.render(
            conversation=conversation_text(r.get("messages")),
            history=history(r.get("messages")),
            prompt=last_user(r.get("messages")),
            reference=r.get("reference"),
            response=r["response"],
            verdicts=item["verdicts"],
            min_score=config.min_score,
            max_score=config.max_score,
        )
        seed = seed_for(config.seed, config.name, item["candidate_id"], item["criterion"])
        asks.append(Ask(text, seed, _point_parser(lo, hi), POINT_FORMAT, schema))
        units.append(item)
    if not asks:
        return empty_table("judgments")
    answers = ask_all(
        _engine(config, engine),
        asks,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        repair=config.repair,
        structured_output=config.structured_output,
    )
    rows = []
    for item, ans in zip(units, answers, strict=True):
        v = ans.verdict
        error = f"engine error: {ans.engine_error}" if ans.engine_error else v.error
        score = None if error else v.score
        why = _stated(score, hi, None if v is None else v.rationale) or ""
        spread = f"resolved spread {item['spread']:.2f} of {item['n_judges']} judges"
        rows.append(
            {
                "judge": config.name,
                "kind": KIND,
                "granularity": GRANULARITY,
                "mode": "point",
                "prompt_id": item["prompt_id"],
                "candidate_id": item["candidate_id"],
                "criterion": item["criterion"],
                "score": scaled(score, lo, hi),
                "rationale": f"{spread}; {why}" if why else spread,
                "raw": ans.raw,
                "parse_error": error,
            }
        )
    return judgments_table(rows)
