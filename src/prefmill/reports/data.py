"""The numbers behind a build report: DuckDB SQL over a ref's tables, one query per chart.

Each aggregate is a built-in file ``prefmill/sql/report/<name>.sql`` (inputs, parameters and output
columns are described at its top). ``collect`` binds every table of a ref as a view, runs the
aggregates whose input tables the ref has, and returns them with the ref's version facts (rows,
errors, tokens, cost, size per table, from the manifests). Nothing here imports Prefect or plotting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa

from prefmill.errors import QueryError
from prefmill.sql import define_judgment_macros
from prefmill.storage.duck import query, session
from prefmill.storage.store import DEFAULT_REF, Store
from prefmill.storage.tables import order_key

#: aggregate name -> the tables it reads (an aggregate runs only when the ref has all of them).
AGGREGATES: dict[str, tuple[str, ...]] = {
    "tokens": ("candidates",),
    "candidates_per_prompt": ("prompts", "candidates"),
    "score_histogram": ("judgments",),
    "margin_histogram": ("pairs",),
    "length_score": ("candidates", "judgments"),
    "length_score_corr": ("candidates", "judgments"),
    "judge_agreement": ("judgments",),
    "swap_consistency": ("judgments",),
    "kto_balance": ("points",),
    "pairs_sample": ("pairs",),
    "funnel": ("prompts", "candidates", "judgments"),
    "prompts_without_pairs": ("prompts", "candidates", "judgments", "pairs"),
    "truncation": ("candidates",),
    "length_delta": ("pairs", "candidates"),
    "empty_responses": ("candidates",),
}

#: Aggregates that read the candidates' scores (``candidate_score_values``, as instantiation does).
SCORED = frozenset({"funnel", "prompts_without_pairs"})

#: Parameters an aggregate's SQL uses, with their defaults (``collect`` overrides them).
DEFAULT_PARAMS: dict[str, dict[str, int]] = {
    "score_histogram": {"bins": 20},
    "margin_histogram": {"bins": 20},
    "length_score": {"limit": 5000},
    "pairs_sample": {"limit": 8},
}


def read_report_sql(name: str) -> str:
    """The text of ``prefmill/sql/report/<name>.sql``."""
    entry = resources.files("prefmill.sql").joinpath("report", f"{name}.sql")
    if not entry.is_file():
        raise QueryError(f"no report SQL '{name}.sql': known aggregates are {', '.join(AGGREGATES)}")
    return entry.read_text(encoding="utf-8")


def aggregate(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, object] | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Run report aggregate ``name`` on ``con`` (its input tables bound as views; the aggregates over
    judgments read them through ``usable_judgments()``, defined here). ``scoring``: the output's
    ``aggregation`` and ``criterion_weights``, for the aggregates that read the scores (``SCORED``)."""
    if "judgments" in AGGREGATES.get(name, ()):
        define_judgment_macros(con)
    if name in SCORED:
        from prefmill.tasks.instantiation.run import bind_candidate_scores

        scoring = scoring or {}
        bind_candidate_scores(con, scoring.get("criterion_weights"), scoring.get("aggregation"))
    merged = {**DEFAULT_PARAMS.get(name, {}), **(params or {})}
    return query(con, read_report_sql(name), merged or None)


@dataclass
class ReportData:
    """Everything a report shows: the ref's versions and one Arrow table per aggregate that ran."""

    dataset: str
    ref: str
    root: str
    ref_created_at: str
    generated_at: str
    versions: list[dict[str, Any]]
    aggregates: dict[str, pa.Table] = field(default_factory=dict)
    #: aggregate -> the input tables the ref lacks (those aggregates did not run)
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float:
        return float(sum(v["cost_usd"] for v in self.versions))

    @property
    def tokens(self) -> int:
        return int(sum(v["tokens"] for v in self.versions))

    def version(self, table: str) -> dict[str, Any] | None:
        """The ref's version facts of ``table`` (None when the ref has no such table)."""
        return next((v for v in self.versions if v["table"] == table), None)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """The rows of aggregate ``name`` as dicts ([] when it did not run)."""
        table = self.aggregates.get(name)
        return table.to_pylist() if table is not None else []


def collect(
    store: Store,
    dataset: str,
    ref: str = DEFAULT_REF,
    params: Mapping[str, Mapping[str, object]] | None = None,
) -> ReportData:
    """Run every report aggregate over ``ref``'s tables. ``params`` maps an aggregate to parameter
    overrides (e.g. ``{"pairs_sample": {"limit": 20}}``)."""
    r = store.read_ref(dataset, ref)
    versions = []
    for table in sorted(r.tables, key=order_key):
        m = store.manifest(dataset, table, r.tables[table])
        versions.append(
            {
                "table": table,
                "version": m.version,
                "stage": m.stage,
                "rows": m.rows,
                "errors": int(m.totals.get("errors", 0)),
                "tokens": int(m.totals.get("tokens", 0)),
                "prompt_tokens": int(m.totals.get("prompt_tokens", 0)),
                "cost_usd": float(m.totals.get("cost_usd", 0.0)),
                "bytes": sum(f.bytes for f in m.files),
                "shards": len(m.files),
                "created_at": m.created_at,
                "empty_reason": m.stats.get("empty_reason") if m.rows == 0 else None,
                # instantiation outputs: what selection removed, by reason, and the rows before it
                "removed": dict(m.stats.get("removed") or {}),
                "rows_before_selection": m.stats.get("rows_before_selection"),
                "params": dict(m.config.get("params") or {}) if m.stage == "instantiation" else {},
            }
        )
    data = ReportData(
        dataset=dataset,
        ref=ref,
        root=store.root,
        ref_created_at=r.created_at,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions=versions,
    )
    scoring = next((v["params"] for v in versions if v["params"].get("aggregation")), {})
    con = session(store, dataset, ref)
    try:
        for name, needs in AGGREGATES.items():
            lacking = [t for t in needs if t not in r.tables]
            if lacking:
                data.missing[name] = lacking
                continue
            data.aggregates[name] = aggregate(con, name, (params or {}).get(name), scoring)
    finally:
        con.close()
    return data


def funnel_steps(data: ReportData) -> list[dict[str, Any]]:
    """The selection funnel of a build, in pipeline order: candidates generated, usable, scored
    (``funnel.sql``), then, when the ref has pairs, the pairs before selection, one step per reason
    selection removed pairs for (the most first) and the pairs kept (the pairs manifest). Each step is
    ``{"step", "n", "kind"}``, kind ``candidates``, ``pairs`` or ``removed``."""
    counts = data.rows("funnel")
    if not counts:
        return []
    c = counts[0]
    steps = [
        {"step": "candidates generated", "n": int(c["candidates"]), "kind": "candidates"},
        {"step": "usable (no generation error)", "n": int(c["usable"]), "kind": "candidates"},
        {"step": "scored (a usable judgment)", "n": int(c["scored"]), "kind": "candidates"},
    ]
    pairs = data.version("pairs")
    if pairs is not None:
        removed = pairs["removed"]
        before = pairs["rows_before_selection"]
        before = int(before) if before is not None else pairs["rows"] + sum(removed.values())
        steps.append({"step": "pairs before selection", "n": before, "kind": "pairs"})
        for reason, n in sorted(removed.items(), key=lambda kv: (-kv[1], kv[0])):
            steps.append({"step": f"removed: {reason}", "n": int(n), "kind": "removed"})
        steps.append({"step": "pairs kept", "n": int(pairs["rows"]), "kind": "pairs"})
    return steps
