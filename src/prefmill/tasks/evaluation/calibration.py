"""Calibration: a file of labelled pairs every LLM judge also judges, to measure its accuracy.

The file is JSONL, one pair a line: ``{"prompt": "...", "chosen": "...", "rejected": "..."}`` (or
``messages`` instead of ``prompt``), or the labelled-pairs layout ``{"prompt", "response_a",
"response_b", "label"}`` (``labelled_pairs``; ties are left out), so a file imported with
``prefmill import-pairs`` calibrates a judge as it is. A judge is right on a pair when it prefers
``chosen`` (point judges: a higher score; pair judges: the side of its mean preference over both
orders); a tie counts one half; a pair it could not judge (parse error) is left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from prefmill.engines.base import Engine
from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.records import read_jsonl
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.chat_pairs import chat_pair, is_conversational
from prefmill.tasks.evaluation.fidelity import pair_labels
from prefmill.tasks.evaluation.labelled_pairs import as_chosen_rejected
from prefmill.tasks.evaluation.llm_judge import llm_judge

if TYPE_CHECKING:
    from prefmill.tasks.evaluation.judges.llm import LLMJudge


def load_calibration(path: str | Path) -> tuple[pa.Table, dict[tuple[str, str], int]]:
    """The pairs as a candidates-like table (candidate_id, prompt_id, response, messages) and the truth:
    (a, b) with a < b -> +1 when a is the chosen one, -1 when b is."""
    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"calibration file {file}: cannot read it (no such file); fix "
            "evaluation.fidelity.calibration in the recipe"
        )
    rows: list[dict[str, Any]] = []
    truth: dict[tuple[str, str], int] = {}
    for n, item in read_jsonl(file, example='{"prompt": ..., "chosen": ..., "rejected": ...}'):
        if isinstance(item, dict) and "response_a" in item and "chosen" not in item:
            item = as_chosen_rejected(item, f"{file} line {n}")  # the labelled-pairs layout
            if item is None:
                continue  # a tie says nothing about a judge's accuracy
        if isinstance(item, dict) and is_conversational(item):  # chosen / rejected as conversations
            chat, chosen, rejected = chat_pair(item, f"{file} line {n}")
            item = {"messages": chat, "chosen": chosen, "rejected": rejected}
        messages = item.get("messages") if isinstance(item, dict) else None
        if messages is None and isinstance(item, dict) and isinstance(item.get("prompt"), str):
            messages = [{"role": "user", "content": item["prompt"]}]
        ok = (
            isinstance(messages, list)
            and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages)
            and all(isinstance(item.get(k), str) and item[k].strip() for k in ("chosen", "rejected"))
        )
        if not ok:
            raise InputError(
                f"{file} line {n}: a calibration pair needs 'prompt' (or 'messages'), 'chosen' and "
                "'rejected' as non-empty text"
            )
        pid = content_id({"messages": messages})
        ids = {k: content_id(["calibration", pid, item[k]]) for k in ("chosen", "rejected")}
        if ids["chosen"] == ids["rejected"]:
            raise InputError(f"{file} line {n}: 'chosen' and 'rejected' are the same text")
        for k in ("chosen", "rejected"):
            rows.append({"candidate_id": ids[k], "prompt_id": pid, "response": item[k], "messages": messages})
        a, b = sorted(ids.values())
        truth[(a, b)] = 1 if a == ids["chosen"] else -1
    if not truth:
        raise InputError(f"calibration file {file} holds no pairs")
    schema = pa.schema(
        [
            ("candidate_id", pa.string()),
            ("prompt_id", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(MESSAGE)),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema), truth


def accuracy(judgments: pa.Table, truth: dict[tuple[str, str], int]) -> dict[str, Any]:
    """{pairs, judged, accuracy} of one judge's rows on the calibration pairs."""
    labels = pair_labels(judgments)
    got: dict[tuple[str, str], list[int]] = {}
    for row in labels.iter_rows(named=True):
        got.setdefault((row["a"], row["b"]), []).append(row["label"])
    scores = []
    for pair, want in truth.items():
        if pair in got:
            mean = sum(got[pair]) / len(got[pair])
            scores.append(0.5 if mean == 0 else float((mean > 0) == (want > 0)))
    return {
        "pairs": len(truth),
        "judged": len(scores),
        "accuracy": round(sum(scores) / len(scores), 6) if scores else None,
    }


def calibrate(config: LLMJudge, path: str | Path, engine: Engine | None = None) -> dict[str, Any]:
    """Judge the calibration pairs with ``config`` and return its accuracy on them."""
    cands, truth = load_calibration(path)
    rows = llm_judge(config, cands, engine)
    df = pl.from_arrow(rows)
    assert isinstance(df, pl.DataFrame)
    result = accuracy(rows, truth)
    result["parse_failures"] = int(df.get_column("parse_error").is_not_null().sum()) if df.height else 0
    return result
