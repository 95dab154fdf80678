"""Combine the prompt sources of a recipe into one ``prompts`` table and one ``prompts_rejected`` table.

Exact duplicates (same ``prompt_id``, i.e. the same messages) are removed: the first occurrence in
source order (the order of ``parts``, then row order) is kept, and every later one is recorded in the
rejected table with the reason ``duplicate of prompt_id <id> (first seen at <location>)`` -- plus
``; its reference differs from the kept row's`` when the two disagree on the gold answer, since that
usually means a data problem the user wants to see.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow as pa

from prefmill.ids import canonical_json
from prefmill.storage.schemas import conform, empty_table, schema_for
from prefmill.tasks.prompts.loaders import LOCATION

#: Bump when the output of the prompts stage changes for the same input (DESIGN §3).
PROMPTS_CODE_VERSION = "1"


def _with_location(prompts: pa.Table, counts: dict[str, int]) -> pa.Table:
    """Declared columns plus ``location``.

    A table without a ``location`` column gets ``<source>:row <n>``, numbering each source's rows
    on from where its previous part stopped (``counts`` is updated in place).
    """
    prompts = conform("prompts", prompts)
    declared = schema_for("prompts").names
    if LOCATION in prompts.column_names:
        location = prompts.column(LOCATION).cast(pa.string())
    else:
        names: list[str] = []
        for source in prompts.column("source").to_pylist():
            counts[source] = counts.get(source, 0) + 1
            names.append(f"{source}:row {counts[source]}")
        location = pa.array(names, pa.string())
    return prompts.select(declared).append_column(LOCATION, location)


def _raw_row(row: dict[str, Any]) -> dict[str, Any]:
    """A duplicate prompt row as the user would have written it (meta decoded back to an object)."""
    out = {k: v for k, v in row.items() if k not in ("prompt_id", "source", LOCATION)}
    if isinstance(out.get("meta"), str):
        with contextlib.suppress(ValueError):
            out["meta"] = json.loads(out["meta"])
    return out


def combine(parts: list[tuple[pa.Table, pa.Table | None]]) -> tuple[pa.Table, pa.Table]:
    """Concatenate ``(prompts, rejected)`` pairs, drop duplicate prompts, return ``(prompts, rejected)``.

    The prompts table has exactly the declared ``prompts`` columns (the loaders' ``location`` column is
    used for the duplicate report, then dropped); the rejected table holds the parts' rejections in
    order followed by one row per removed duplicate, whose ``raw`` is the duplicate row as JSON. A part's
    rejected table may be ``None`` or column-less (a generated source rejects nothing).
    """
    declared = schema_for("prompts").names
    rejected_columns = schema_for("prompts_rejected").names
    if not parts:
        return empty_table("prompts"), empty_table("prompts_rejected")
    counts: dict[str, int] = {}
    prompts = pa.concat_tables([_with_location(p, counts) for p, _ in parts])
    rejected = pa.concat_tables(
        [empty_table("prompts_rejected")]
        + [
            conform("prompts_rejected", r).select(rejected_columns)
            for _, r in parts
            if r is not None and r.num_columns
        ]
    )

    import polars as pl  # here, not at the top: the unchanged-build check reads this module's code version

    keys = pl.from_arrow(prompts.select(["prompt_id", "source", "reference", LOCATION]))
    assert isinstance(keys, pl.DataFrame)
    keys = keys.with_row_index("row")
    # Rows are in source order, so first() within a prompt_id is the first occurrence.
    keys = keys.with_columns(
        keep=pl.col("prompt_id").is_first_distinct(),
        first_location=pl.col(LOCATION).first().over("prompt_id"),
        first_reference=pl.col("reference").first().over("prompt_id"),
    )
    keep = keys.get_column("keep").to_arrow()
    kept = prompts.filter(keep).select(declared)

    dupes = keys.filter(~pl.col("keep"))
    if dupes.height:
        differs = dupes.get_column("reference").ne_missing(dupes.get_column("first_reference"))
        reasons = [
            f"duplicate of prompt_id {pid} (first seen at {loc})"
            + ("; its reference differs from the kept row's" if diff else "")
            for pid, loc, diff in zip(
                dupes.get_column("prompt_id").to_list(),
                dupes.get_column("first_location").to_list(),
                differs.to_list(),
                strict=True,
            )
        ]
        rows = prompts.take(pa.array(dupes.get_column("row").to_list(), pa.int64()))
        raws = [canonical_json(_raw_row(r)) for r in rows.to_pylist()]
        extra = pa.table(
            {
                "source": rows.column("source"),
                "location": rows.column(LOCATION),
                "reason": pa.array(reasons, pa.string()),
                "raw": pa.array(raws, pa.string()),
            }
        )
        rejected = pa.concat_tables([rejected, conform("prompts_rejected", extra)])
    return conform("prompts", kept), conform("prompts_rejected", rejected)
