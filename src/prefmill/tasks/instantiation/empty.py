"""Why an instantiation output has no rows: one sentence for the build summary, the manifest
(``stats.empty_reason``) and the report, from what selection removed and from a look at the scores
(``sql/empty_output.sql``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

from prefmill.sql import read_sql


def diagnose(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The counts of ``empty_output.sql`` on a session with prompts, candidates and candidate_scores."""
    cursor = con.execute(read_sql("empty_output"))
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()  # all of it: DuckDB 2.0 keeps a half-read result blocking the connection
    row = rows[0] if rows else tuple(0 for _ in names)
    return {n: int(v or 0) for n, v in zip(names, row, strict=True)}


def _removed(removed: Mapping[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(removed.items(), key=lambda kv: (-kv[1], kv[0])))


def empty_reason(
    output: str,
    removed: Mapping[str, int],
    counts: Mapping[str, int],
    params: Mapping[str, Any],
    fidelity_command: str = "prefmill report fidelity",
) -> str:
    """The first reason, in pipeline order, that ``output`` has no rows; ``fidelity_command`` is the
    `report fidelity` command line to suggest (with the build's ``--dataset`` and ``--root``)."""
    if removed and sum(removed.values()):
        hint = ""
        if "swap_inconsistent" in removed:
            hint = (
                f" (a pair judge whose verdict follows the position: `{fidelity_command}`; "
                "instantiation.selection.drop_swap_inconsistent: false keeps them)"
            )
        return f"selection removed all {sum(removed.values())} rows: {_removed(removed)}{hint}"
    if counts.get("prompts", 0) == 0:
        return "the prompts table is empty"
    if counts.get("candidates", 0) == 0:
        return "no candidate without a generation error"
    if counts.get("scored", 0) == 0:
        return (
            "no candidate has a usable judgment (every verdict failed to parse, or no judge scored "
            f"these candidates): `{fidelity_command}`"
        )
    if output in ("pairs", "lists") and counts.get("prompts_two_scored", 0) == 0:
        return "no prompt has two scored candidates (synthesis.k below 2, or most verdicts missing)"
    if output == "pairs" and counts.get("prompts_distinct_scores", 0) == 0:
        return (
            "every prompt's candidates score the same, so no pair has a margin (a judge that always "
            "ties, or a pair judge that always picks one position, scores every candidate 0.5)"
        )
    if output == "pairs":
        return (
            f"no candidate pair passes the pair filters (instantiation.min_margin "
            f"{params.get('min_margin')}, the pairing strategies and their limits)"
        )
    if output == "points":
        return "no candidate passes the labelling rule (instantiation.label_rule and its thresholds)"
    return f"no group passes the filters of {output} (instantiation section)"
