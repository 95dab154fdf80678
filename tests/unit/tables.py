"""Small valid tables for each prefmill table schema (DESIGN §2), shared by the unit tests.

``build("candidates", 6)`` returns a table typed exactly as the declared schema; ``rows(...)`` gives the
same data as plain dicts, for tests that want Arrow to infer types (int64, large_string, ...).
Values are deterministic: the same call gives the same table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from prefmill.ids import content_id
from prefmill.storage.schemas import SCHEMAS

Row = dict[str, Any]

#: The tables of the data model (``prompts_rejected`` is a side table, covered separately).
TABLES: tuple[str, ...] = ("prompts", "candidates", "steps", "judgments", "pairs", "points", "lists")


def _pid(i: int) -> str:
    return content_id({"prompt": i})


def _cid(i: int) -> str:
    return content_id({"candidate": i})


def prompts_rows(n: int) -> list[Row]:
    return [
        {
            "prompt_id": _pid(i),
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"Question {i}: what is {i} + {i}?"},
            ],
            "source": "unit",
            "reference": str(2 * i) if i % 2 == 0 else None,
            "rubric": "correctness" if i % 3 == 0 else None,
            "meta": json.dumps({"i": i}),
        }
        for i in range(n)
    ]


def candidates_rows(n: int, *, errors: int = 0, prompts: int = 3) -> list[Row]:
    """``n`` candidates over ``prompts`` prompts; the first ``errors`` rows are failed generations."""
    out = []
    for i in range(n):
        failed = i < errors
        out.append(
            {
                "candidate_id": _cid(i),
                "prompt_id": _pid(i % prompts),
                "response": None if failed else f"The answer is {2 * (i % prompts)}. " + "x" * (i % 7),
                "generator": "transformers:tiny-model",
                "origin": "online",
                "sampling": json.dumps({"temperature": 0.7, "seed": i}),
                "sample_index": i // prompts,
                "n_tokens": 0 if failed else 10 + i,
                "prompt_tokens": 20,
                "finish_reason": "error" if failed else "stop",
                "logprob": None if failed else -0.5 * (i + 1),
                "latency_ms": 12.5 + i,
                "error": "RuntimeError: engine failed" if failed else None,
                "parent_id": None,
            }
        )
    return out


def steps_rows(n: int) -> list[Row]:
    """``n`` steps: candidate ``i // 2`` has two steps, each with the prefix that precedes it."""
    out = []
    for i in range(n):
        index = i % 2
        text = f"Step {index + 1}: add {i}."
        start = 0 if index == 0 else 14
        out.append(
            {
                "step_id": content_id({"step": i}),
                "prompt_id": _pid((i // 2) % 3),
                "candidate_id": _cid(i // 2),
                "step_index": index,
                "n_steps": 2,
                "text": text,
                "char_start": start,
                "char_end": start + len(text),
                "prefix": "" if index == 0 else f"Step 1: add {i - 1}.",
            }
        )
    return out


def judgments_rows(n: int, *, parse_errors: int = 0) -> list[Row]:
    """Pair-wise judgments in both orders; the first ``parse_errors`` rows could not be parsed."""
    out = []
    for i in range(n):
        failed = i < parse_errors
        out.append(
            {
                "judgment_id": content_id({"judgment": i}),
                "prompt_id": _pid(i % 3),
                "candidate_id": _cid(i),
                "other_candidate_id": _cid(i + 1),
                "judge": "llm:tiny-judge",
                "kind": "llm",
                "mode": "pair",
                "criterion": "overall",
                "granularity": "outcome",
                "unit_index": None,
                "order": "ab" if i % 2 == 0 else "ba",
                "score": None if failed else float(i % 5),
                "prefers_first": None if failed else (i % 3) / 2,
                "rationale": None if failed else f"reason {i}",
                "raw": f"raw judge output {i}",
                "parse_error": "no verdict found" if failed else None,
            }
        )
    return out


def pairs_rows(n: int) -> list[Row]:
    return [
        {
            "pair_id": content_id({"pair": i}),
            "prompt_id": _pid(i % 3),
            "prompt": f"Question {i % 3}",
            "chosen": f"good answer {i}",
            "rejected": f"bad answer {i}",
            "chosen_id": _cid(2 * i),
            "rejected_id": _cid(2 * i + 1),
            "chosen_score": 8.0,
            "rejected_score": 3.0 + i % 3,
            "margin": 5.0 - i % 3,
            "soft_label": 0.9,
            "uncertainty": 0.1 * (i % 4),
            "criterion": "overall",
            "weight": 1.0,
            "strategy": "best_vs_worst",
        }
        for i in range(n)
    ]


def points_rows(n: int) -> list[Row]:
    return [
        {
            "point_id": content_id({"point": i}),
            "prompt_id": _pid(i % 3),
            "prompt": f"Question {i % 3}",
            "completion": f"completion {i}",
            "candidate_id": _cid(i),
            "reward": 0.25 * i,
            "label": i % 2 == 0,
            "criterion": "overall",
        }
        for i in range(n)
    ]


def lists_rows(n: int) -> list[Row]:
    return [
        {
            "list_id": content_id({"list": i}),
            "prompt_id": _pid(i),
            "prompt": f"Question {i}",
            "candidate_ids": [_cid(3 * i + k) for k in range(3)],
            "completions": [f"completion {i}.{k}" for k in range(3)],
            "scores": [1.0, 2.0 + i, 0.5],
            "ranks": [2, 1, 3],
            "advantages": [-0.2, 1.1, -0.9],
        }
        for i in range(n)
    ]


def prompts_rejected_rows(n: int) -> list[Row]:
    return [
        {"source": "unit", "location": f"line {i + 1}", "reason": "empty prompt", "raw": ""} for i in range(n)
    ]


ROWS: dict[str, Callable[[int], list[Row]]] = {
    "prompts": prompts_rows,
    "prompts_rejected": prompts_rejected_rows,
    "candidates": candidates_rows,
    "steps": steps_rows,
    "judgments": judgments_rows,
    "pairs": pairs_rows,
    "points": points_rows,
    "lists": lists_rows,
}


def rows(table: str, n: int = 6) -> list[Row]:
    """``n`` rows of ``table`` as plain dicts."""
    return ROWS[table](n)


def build(table: str, n: int = 6, **kwargs: Any) -> pa.Table:
    """``n`` rows of ``table``, typed exactly as its declared schema. ``kwargs`` go to the row builder
    (``errors=`` for candidates, ``parse_errors=`` for judgments)."""
    return pa.Table.from_pylist(ROWS[table](n, **kwargs), schema=SCHEMAS[table])


def inferred(table: str, n: int = 6) -> pa.Table:
    """The same rows with types left to Arrow's inference (int64 for every integer, for example)."""
    return pa.Table.from_pylist(ROWS[table](n))
