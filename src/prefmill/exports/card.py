"""The dataset card (README.md with the Hugging Face Hub's YAML header) written next to every export.

The header is ``huggingface_hub``'s ``DatasetCardData`` (license, language, task and size categories,
``dataset_info`` features as ``datasets`` writes them, a config with the splits' files), so the Hub
shows and loads the export like any dataset pushed with ``datasets``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import yaml

from prefmill.sql import define_judgment_macros
from prefmill.storage import Manifest

if TYPE_CHECKING:  # imported where a card is made: not on every CLI start (~0.5 s)
    from huggingface_hub import DatasetCardData

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


def features(schema: pa.Schema) -> list[dict[str, Any]]:
    """The card's ``dataset_info.features``, as ``datasets`` writes them for the same Arrow schema."""
    from datasets import Features

    return Features.from_arrow_schema(schema)._to_yaml_list()


def _data_files(containers: list[str], splits: list[str]) -> list[dict[str, str]]:
    if "parquet" in containers:
        return [{"split": s, "path": f"data/{s}-*"} for s in splits]
    if "jsonl" in containers:
        return [{"split": s, "path": f"{s}.jsonl"} for s in splits]
    return []


def card_data(
    *,
    pretty_name: str,
    fmt_name: str,
    schema: pa.Schema,
    splits: dict[str, int],
    split_bytes: dict[str, int],
    containers: list[str],
    license: str | None,
    language: list[str] | None,
) -> DatasetCardData:
    """The Hub's YAML header, built with ``huggingface_hub``'s own ``DatasetCardData``."""
    from huggingface_hub import DatasetCardData

    rows = sum(splits.values())
    extra: dict[str, Any] = {
        "tags": ["prefmill", "preference", "trl", fmt_name],
        "dataset_info": {
            "features": features(schema),
            "splits": [
                {"name": k, "num_bytes": split_bytes.get(k, 0), "num_examples": v} for k, v in splits.items()
            ],
        },
    }
    files = _data_files(containers, list(splits))
    if files:
        extra["configs"] = [{"config_name": "default", "data_files": files}]
    return DatasetCardData(
        pretty_name=pretty_name,
        license=license,
        language=language or None,
        task_categories=["text-generation"],
        size_categories=[size_category(rows)],
        **extra,
    )


def render_card(
    *,
    dataset: str,
    manifest: Manifest,
    lineage: list[Manifest],
    fmt_name: str,
    schema: pa.Schema,
    trainer: str,
    conversational: bool,
    splits: dict[str, int],
    split_bytes: dict[str, int],
    prompts_per_split: dict[str, int],
    split_seed: int | None,
    where: str | None,
    containers: list[str],
    con: duckdb.DuckDBPyConnection,
    has_judgments: bool,
    recipe: dict[str, Any] | None,
    license: str | None = None,
    language: list[str] | None = None,
    hub_repo: str | None = None,
) -> str:
    data = card_data(
        pretty_name=f"{dataset} {manifest.table} ({fmt_name})",
        fmt_name=fmt_name,
        schema=schema,
        splits=splits,
        split_bytes=split_bytes,
        containers=containers,
        license=license,
        language=language,
    )
    rows = sum(splits.values())
    columns = schema.names
    lines = [
        f"# {dataset}: {manifest.table} as `{fmt_name}`",
        "",
        f"Built with prefmill from table `{manifest.table}@{manifest.version}` of dataset `{dataset}`"
        + (f", rows where `{where}`" if where else "")
        + f". {rows:,} rows; format: TRL {'conversational' if conversational else 'standard'}, "
        f"for {trainer}.",
        "",
    ]
    if len(splits) > 1:
        lines += [
            "Splits are by prompt (no prompt is in two splits), chosen by `md5(seed:prompt_id)` with "
            f"seed {split_seed}:",
            "",
            *_table(
                [{"split": k, "rows": v, "prompts": prompts_per_split.get(k)} for k, v in splits.items()]
            ),
            "",
        ]
    lines += ["## Load", "", "```python", "from datasets import load_dataset, load_from_disk"]
    if hub_repo:
        lines.append(f'ds = load_dataset("{hub_repo}")')
    if "parquet" in containers:
        files = ", ".join(f'"{s}": "data/{s}-*.parquet"' for s in splits)
        lines.append(f'ds = load_dataset("parquet", data_files={{{files}}})')
    if "jsonl" in containers:
        files = ", ".join(f'"{s}": "{s}.jsonl"' for s in splits)
        lines.append(f'ds = load_dataset("json", data_files={{{files}}})')
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
    from huggingface_hub import DatasetCard

    template = "---\n{{ card_data }}\n---\n\n{{ body }}\n"
    return str(DatasetCard.from_template(data, template_str=template, body="\n".join(lines)))
