"""The numbers an instantiation output's manifest carries (label balance, groups, prompts covered, what
selection removed), computed in DuckDB over the kept rows of an ``InstantiatedStream``: the same
figures as ``flows.instantiation.output_stats`` computes over an Arrow table, without bringing the
rows to Python."""

from __future__ import annotations

from typing import Any

from prefmill.tasks.instantiation.run import InstantiatedStream


def _value_counts(stream: InstantiatedStream, column: str) -> dict[str, int]:
    rows = stream.con.execute(f"SELECT {column}, count(*) FROM {stream.relation} GROUP BY ALL").fetchall()
    return {str(v): int(n) for v, n in sorted(rows, key=lambda r: str(r[0]))}


def stream_stats(stream: InstantiatedStream) -> dict[str, Any]:
    """``output_stats`` of an output kept in DuckDB, computed there (the rows never come to Python)."""
    stats: dict[str, Any] = {"rows_before_selection": stream.rows_before_selection}
    stats["removed"] = dict(stream.removed)
    if stream.rows == 0:
        return stats
    con, rel = stream.con, stream.relation
    columns = {row[0] for row in con.execute(f"DESCRIBE {rel}").fetchall()}
    stats["prompts"] = con.execute(f"SELECT count(DISTINCT prompt_id) FROM {rel}").fetchall()[0][0]
    if "criterion" in columns:
        stats["criteria"] = _value_counts(stream, "criterion")
    if stream.output == "points":
        desirable = con.execute(f"SELECT sum(label::BIGINT) FROM {rel}").fetchall()[0][0] or 0
        undesirable = stream.rows - desirable
        stats.update(desirable=desirable, undesirable=undesirable)
        stats["desirable_ratio"] = round(desirable / undesirable, 6) if undesirable else None
    if stream.output == "pairs":
        mean = con.execute(f"SELECT avg(margin) FROM {rel}").fetchall()[0][0]
        stats["mean_margin"] = round(mean or 0.0, 6)
        stats["strategies"] = _value_counts(stream, "strategy")
    if stream.output == "lists" and "zero_variance" in columns:
        zero = con.execute(f"SELECT sum(zero_variance::BIGINT) FROM {rel}").fetchall()[0][0]
        stats["zero_variance_groups"] = int(zero or 0)
    return stats
