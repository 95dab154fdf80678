"""Train/test splits by prompt: every row of a prompt lands in the same split, so no prompt is in both.

The test prompts are the first ``n`` prompt ids ordered by ``md5(seed:prompt_id)``: the same seed and
prompts give the same split on any machine, and adding prompts moves none of the old ones across.
"""

from __future__ import annotations

import duckdb

from prefmill.errors import ExportError


def test_count(test_size: float, n_prompts: int) -> int:
    """How many prompts go to test: a share when ``test_size`` < 1, a count when it is >= 1."""
    if test_size <= 0:
        raise ExportError(f"--test-size {test_size}: give a share in (0, 1) or a number of prompts >= 1")
    n = round(test_size * n_prompts) if test_size < 1 else int(test_size)
    if not 0 < n < n_prompts:
        raise ExportError(
            f"--test-size {test_size} puts {n} of {n_prompts} prompts in test: both splits need a prompt; "
            "choose a share or count that leaves prompts on each side"
        )
    return n


def define_split(con: duckdb.DuckDBPyConnection, test_size: float, seed: int) -> dict[str, int]:
    """Create the temp table ``test_prompts`` (prompt_id) from the view ``raw_filtered``; the number of
    prompts per split."""
    cols = [r[0] for r in con.sql("DESCRIBE raw_filtered").fetchall()]
    if "prompt_id" not in cols:
        raise ExportError("--test-size splits by prompt, and this table has no prompt_id column")
    prompts = con.sql("SELECT count(DISTINCT prompt_id) FROM raw_filtered").fetchall()[0][0]
    n = test_count(test_size, prompts)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE test_prompts AS "
        "SELECT prompt_id FROM (SELECT DISTINCT prompt_id FROM raw_filtered) "
        "ORDER BY md5(? || ':' || prompt_id), prompt_id LIMIT ?",
        [str(seed), n],
    )
    return {"train": prompts - n, "test": n}


def split_view_sql(split: str) -> str:
    """The ``source`` view of one split (``raw_filtered`` restricted to its prompts)."""
    op = "IN" if split == "test" else "NOT IN"
    return (
        "CREATE OR REPLACE TEMP VIEW source AS SELECT * FROM raw_filtered "
        f"WHERE prompt_id {op} (SELECT prompt_id FROM test_prompts)"
    )
