"""The score views the runner defines on a connection, and their snapshot while one output's SQL runs.

``SCORE_VIEWS`` names the views and the built-in SQL file of each; ``scores_computed_once`` computes
the scores an output's SQL reads once into a temporary table (``snapshot_for`` says which, if any)
and puts the views back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from prefmill.sql import read_sql

#: Temporary table holding the snapshot while one output's SQL runs.
SCORES_TABLE = "__prefmill_candidate_score_values"

#: The views the runner defines over the inputs, each from its built-in SQL file: the judges' scores
#: (judged_values.sql), those of the usable candidates (score_values.sql) over them, then the scores
#: with their texts (scores.sql).
SCORE_VIEWS = (
    ("candidate_judged_values", "judged_values"),
    ("candidate_score_values", "score_values"),
    ("candidate_scores", "scores"),
)


def view_sql(name: str, sql_name: str) -> str:
    """The statement that defines view ``name`` from built-in SQL file ``sql_name``."""
    return f"CREATE OR REPLACE TEMP VIEW {name} AS\n{read_sql(sql_name)}\n"


@dataclass(frozen=True)
class Snapshot:
    """``columns`` of the view ``source`` computed once into a temporary table, which the views named in
    ``readers`` read while one output's SQL runs."""

    source: str
    columns: str
    readers: tuple[str, ...]


@contextmanager
def scores_computed_once(con: duckdb.DuckDBPyConnection, snapshot: Snapshot | None) -> Iterator[None]:
    """Compute ``snapshot`` once for the output SQL (None: leave the views alone), and put the views
    back afterwards. DuckDB's errors propagate: the caller names the output in its message.

    DuckDB plans and runs a view again at every reference, so SQL naming the scores more than once
    runs over a snapshot (a temporary table, spilled past the memory limit; the same rows, as the
    inputs do not change within one call); SQL naming them once runs on the view (a snapshot would
    only add a copy). The columns not kept, and their share of the candidates join, are never
    computed (at 1M candidates about 1.5 of 12.5 CPU seconds for points)."""
    if snapshot is None:
        yield
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {SCORES_TABLE} AS SELECT {snapshot.columns} FROM {snapshot.source}"
    )
    for name in snapshot.readers:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {SCORES_TABLE}")
    try:
        yield
    finally:
        for name, sql_name in SCORE_VIEWS:
            if name in snapshot.readers:
                con.execute(view_sql(name, sql_name))
        con.execute(f"DROP TABLE IF EXISTS {SCORES_TABLE}")


def snapshot_for(output: str, values: Mapping[str, object], sql_text: str, builtin: bool) -> Snapshot | None:
    """The snapshot of the scores the output SQL reads (None: the views): every column of
    ``candidate_score_values`` for SQL of one's own naming the scores twice or more.

    Built-in SQL, the columns it reads: pairs with any strategy but best_vs_worst alone read
    ``candidate_score_values`` again: snapshot, which best_vs_worst then reads in place of
    ``candidate_judged_values`` (the usable candidates' rows of it, which best_vs_worst joins with
    the usable candidates anyway: the same pairs). Lists and best_vs_worst pairs read the scores once
    (one GROUP BY): the views. Points read ``candidate_judged_values`` once too, but with the view
    inlined DuckDB plans the candidates' join worse."""
    if not builtin:
        if sql_text.count("candidate_score") < 2:
            return None
        return Snapshot("candidate_score_values", "*", ("candidate_score_values",))
    if output == "pairs" and list(values.get("strategies") or []) != ["best_vs_worst"]:  # type: ignore[call-overload]
        columns = "prompt_id, candidate_id, criterion, score, spread, logprob_per_token"
        return Snapshot(
            "candidate_score_values", columns, ("candidate_score_values", "candidate_judged_values")
        )
    if output == "points":
        columns = "prompt_id, candidate_id, criterion, score, spread"
        return Snapshot("candidate_judged_values", columns, ("candidate_judged_values",))
    return None
