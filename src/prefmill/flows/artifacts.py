"""Prefect artifacts of a stage: what the Prefect UI shows on a flow run's Artifacts tab.

Every stage flow (and ``build``) gets ``publish_artifacts`` as an ``on_completion`` hook (see
``STAGE_FLOW`` in ``common``): when the flow completes, the hook publishes

* a table artifact ``prefmill-<dataset>-<stage>-rows``: one row per table version the flow produced or
  reused (rows, errors, tokens, cost, built/cached, seconds), and
* a markdown artifact ``prefmill-<dataset>-<stage>-summary``: the same in words, with the commands
  that show the rows.

The keys are stable across runs, so the UI's artifact page lists every build's numbers in order.
Prefect runs hooks inside the flow run's context and logs (does not raise) a hook's error: a Prefect
API hiccup while publishing an artifact never fails a build whose tables are already published.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from prefmill.storage.hints import command


def _results(value: Any) -> tuple[str, list[Any]]:
    """(dataset, table results) of a flow's return value: a TableResult, a list of them, or a build
    summary with ``.tables``."""
    if hasattr(value, "tables") and isinstance(value.tables, list):
        return str(getattr(value, "dataset", "")), list(value.tables)
    items = value if isinstance(value, list) else [value]
    results = [r for r in items if all(hasattr(r, a) for a in ("table", "version", "rows", "cached"))]
    dataset = next((getattr(r, "dataset", "") for r in results if getattr(r, "dataset", "")), "")
    return dataset, results


def artifact_key(dataset: str, stage: str, kind: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) for ``dataset`` / ``stage``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"prefmill-{dataset}-{stage}-{kind}".lower())
    return re.sub(r"-{2,}", "-", slug).strip("-")


def row_counts(results: list[Any]) -> list[dict[str, Any]]:
    """The table artifact's rows: one per table version."""
    return [
        {
            "table": r.table,
            "version": r.version,
            "rows": r.rows,
            "errors": int(r.totals.get("errors", 0)),
            "tokens": int(r.totals.get("tokens", 0)),
            "cost_usd": round(float(r.totals.get("cost_usd", 0.0)), 6),
            "status": "cached" if r.cached else "built",
            "seconds": round(r.seconds, 2),
        }
        for r in results
    ]


def summary_markdown(dataset: str, stage: str, results: list[Any], value: Any = None) -> str:
    """The markdown artifact: a table of the versions and how to look at them."""
    lines = [f"## prefmill {stage}: `{dataset}`", ""]
    if value is not None and hasattr(value, "ref"):
        cost = float(getattr(value, "cost_usd", 0.0))
        text = getattr(value, "tokens_text", None)
        tokens = text() if callable(text) else f"{int(getattr(value, 'tokens', 0)):,}"
        lines += [
            f"Built in {getattr(value, 'seconds', 0.0):.1f} s · tokens generated {tokens} · "
            f"cost ${cost:.4f} · ref `{value.ref}`"
            + (f" · stopped after {value.stopped_after}" if getattr(value, "stopped_after", None) else ""),
            "",
        ]
    lines += [
        "| table | version | rows | errors | tokens | status | time |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in row_counts(results):
        lines.append(
            f"| {r['table']} | `{r['version']}` | {r['rows']:,} | {r['errors']:,} | {r['tokens']:,} | "
            f"{r['status']} | {r['seconds']:.1f} s |"
        )
    lines += ["", "Look at the rows:", ""]
    root = next((r.root for r in results if r.root), None)
    shows = [command("show", f"{r.table}@{r.version}", root=r.root, dataset=dataset) for r in results]
    lines += [f"- `{c}`" for c in shows]
    report = command("report", "--out", "report.html", root=root, dataset=dataset)
    lines += ["", f"A report with charts: `{report}`"]
    return "\n".join(lines) + "\n"


def publish_artifacts(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_completion`` hook of the stage flows: publish the row-count table and the summary."""
    value = state.result(raise_on_failure=False)
    dataset, results = _results(value)
    if not results:
        return
    stage = flow.name.removeprefix("prefmill-")
    create_table_artifact(
        row_counts(results),
        key=artifact_key(dataset, stage, "rows"),
        description=f"prefmill {stage}: rows per table version of dataset {dataset}",
    )
    create_markdown_artifact(
        summary_markdown(dataset, stage, results, value),
        key=artifact_key(dataset, stage, "summary"),
        description=f"prefmill {stage}: summary",
    )
