"""The dataset card (README.md with the Hugging Face Hub's YAML header) written next to every export."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import yaml

from prefmill.sql import define_judgment_macros
from prefmill.storage import Manifest

_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def size_category(rows: int) -> str:
    for limit, label in _SIZES:
        if rows < limit:
            return label
    return "1M<n<10M" if rows < 10_000_000 else "n>10M"


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    rel = con.sql(sql)
    names = rel.columns
    return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> list[str]:
    return [r[0] for r in con.sql(f"DESCRIBE {view}").fetchall()]


def distributions(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """min / quartiles / max / mean of the numeric signal columns of ``source`` present."""
    out = []
    for col in ("margin", "chosen_score", "rejected_score", "reward", "soft_label", "weight"):
        if col not in _columns(con, "source"):
            continue
        (row,) = _scalar(
            con,
            f"SELECT '{col}' AS column, count({col}) AS n, min({col}) AS min, "
            f"quantile_cont({col}, 0.25) AS p25, median({col}) AS median, "
            f"quantile_cont({col}, 0.75) AS p75, max({col}) AS max, avg({col}) AS mean FROM source",
        )
        out.append(row)
    return out


def breakdowns(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict[str, Any]]]:
    out = {}
    cols = _columns(con, "source")
    for col in ("criterion", "strategy", "label"):
        if col in cols:
            out[col] = _scalar(
                con, f"SELECT {col}::VARCHAR AS value, count(*) AS rows FROM source GROUP BY 1 ORDER BY 1"
            )
    return out


def judge_summary(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per judge: verdicts, parse errors, mean score, and for pair-wise judges the share of pairs whose
    two orders agree (swap consistency: ``swap_pairs()``, sql/usable_judgments.sql)."""
    define_judgment_macros(con)
    return _scalar(
        con,
        """
        WITH consistency AS (
            SELECT judge, avg(CASE WHEN consistent THEN 1.0 ELSE 0.0 END) AS swap_consistency
            FROM swap_pairs() GROUP BY judge
        )
        SELECT j.judge, any_value(j.kind) AS kind, string_agg(DISTINCT j.mode, ',') AS modes,
               count(*) AS verdicts, count(j.parse_error) AS parse_errors,
               round(avg(j.score), 4) AS mean_score,
               round(any_value(c.swap_consistency), 4) AS swap_consistency
        FROM judgments AS j LEFT JOIN consistency AS c ON c.judge = j.judge
        GROUP BY j.judge ORDER BY j.judge
        """,
    )


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    names = list(rows[0])

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(r[n]) for n in names) + " |" for r in rows]
    return lines


def render_card(
    *,
    dataset: str,
    manifest: Manifest,
    lineage: list[Manifest],
    fmt_name: str,
    columns: list[str],
    trainer: str,
    conversational: bool,
    rows: int,
    where: str | None,
    containers: list[str],
    con: duckdb.DuckDBPyConnection,
    has_judgments: bool,
    recipe: dict[str, Any] | None,
) -> str:
    header: dict[str, Any] = {
        "pretty_name": f"{dataset} {manifest.table} ({fmt_name})",
        "tags": ["prefmill", "preference", "trl", fmt_name],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(rows)],
    }
    if "parquet" in containers:
        header["configs"] = [
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
        ]
    elif "jsonl" in containers:
        header["configs"] = [
            {"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}
        ]
    lines = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
    lines += [
        f"# {dataset}: {manifest.table} as `{fmt_name}`",
        "",
        f"Built with prefmill from table `{manifest.table}@{manifest.version}` of dataset `{dataset}`"
        + (f", rows where `{where}`" if where else "")
        + f". {rows:,} rows; format: TRL {'conversational' if conversational else 'standard'}, "
        f"for {trainer}.",
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset, load_from_disk",
    ]
    if "parquet" in containers:
        lines.append('ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")')
    if "jsonl" in containers:
        lines.append('ds = load_dataset("json", data_files="train.jsonl", split="train")')
    if "disk" in containers:
        lines.append('ds = load_from_disk("hf")')
    lines += ["```", "", "## Columns", "", ", ".join(f"`{c}`" for c in columns), ""]
    lines += ["## Distributions", "", *_table(distributions(con)), ""]
    for name, counts in breakdowns(con).items():
        lines += [f"Rows by `{name}`:", "", *_table(counts), ""]
    if manifest.stats:
        lines += [
            "## Table statistics (selection removals, label balance)",
            "",
            "```json",
            json.dumps(manifest.stats, indent=2, sort_keys=True, default=str),
            "```",
            "",
        ]
    lines += ["## Judges", ""]
    lines += _table(judge_summary(con)) if has_judgments else ["(no judgments in the lineage)"]
    lines += ["", "## Table versions and lineage", ""]
    lines += _table(
        [
            {
                "table": m.table,
                "version": m.version,
                "rows": m.rows,
                "stage": m.stage,
                "created_at": m.created_at,
            }
            for m in [manifest, *lineage]
        ]
    )
    lines += ["", "## Recipe", ""]
    if recipe is not None:
        lines += ["```yaml", yaml.safe_dump(recipe, sort_keys=False).strip(), "```"]
    else:
        lines += ["Stage configs from the manifests:", "", "```yaml"]
        configs = {f"{m.table}@{m.version}": m.config for m in [manifest, *lineage]}
        lines += [
            yaml.safe_dump(json.loads(json.dumps(configs, default=str)), sort_keys=False).strip(),
            "```",
        ]
    return "\n".join(lines) + "\n"
