"""Built-in pairs come out in one order on every run: pairs.sql leaves its rows unordered and the runner
sorts the selected rows by the table's row_order once, when it reads them out."""

from __future__ import annotations

from test_instantiation_sql import cand, connect, judg, prompt

from prefmill.storage.tables import TABLES
from prefmill.tasks.instantiation import instantiate


def test_pairs_are_read_out_in_row_order_whatever_the_input_order() -> None:
    prompts, candidates, judgments = [], [], []
    for p in reversed(range(400)):  # inputs in descending prompt order
        pid = f"p{p:04d}"
        prompts.append(prompt(pid))
        for c, score in zip("dcba", (0.9, 0.1, 0.6, 0.3), strict=True):
            cid = f"{pid}-{c}"
            candidates.append(cand(cid, pid))
            judgments += [judg(pid, cid, score), judg(pid, cid, 1.0 - score, criterion="brevity")]
    rows = instantiate(
        connect(prompts, candidates, judgments), "pairs", {"strategies": ["best_vs_worst", "all_pairs"]}
    ).to_pylist()
    key = TABLES["pairs"].row_order
    assert key == ("prompt_id", "criterion", "strategy", "chosen_id", "rejected_id")
    assert len(rows) == 400 * 2 * (1 + 6)
    assert [tuple(r[k] for k in key) for r in rows] == sorted(tuple(r[k] for k in key) for r in rows)
    assert rows[0]["prompt_id"] == "p0000" and rows[-1]["prompt_id"] == "p0399"
