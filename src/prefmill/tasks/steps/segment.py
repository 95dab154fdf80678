"""Cut a response into reasoning steps: pure functions over text and Arrow tables.

A step is a span ``[char_start, char_end)`` of the response with its surrounding whitespace left out;
its ``prefix`` is ``response[:char_end]``, the reply up to the end of that step (a rollout continues
from it). The boundaries come from the recipe's ``steps`` segmenter (``StepsConfig``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefmill.errors import InputError
from prefmill.ids import content_id

if TYPE_CHECKING:
    import pyarrow as pa

    from prefmill.tasks.steps.config import StepsConfig

_STEP_N = re.compile(r"(?i)\bstep\s*\d+\s*[:)]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Step:
    index: int
    text: str
    char_start: int
    char_end: int


def _starts(text: str, config: StepsConfig) -> list[int]:
    """Where steps start (ascending, first one 0)."""
    if config.segmenter == "lines":
        return [0, *(m.end() for m in re.finditer(r"\n", text))]
    if config.segmenter == "sentences":
        return [0, *(m.end() for m in _SENTENCE_END.finditer(text))]
    pattern = _STEP_N if config.segmenter == "step-n" else re.compile(config.pattern or "")
    found = [m.start() for m in pattern.finditer(text)]
    return [0, *found[1:]]  # text before the first match belongs to the first step


def split_steps(text: str, config: StepsConfig) -> list[Step]:
    """The steps of ``text``: non-blank pieces between the segmenter's boundaries, stripped."""
    starts = sorted(set(_starts(text, config)))
    steps: list[Step] = []
    for a, b in zip(starts, [*starts[1:], len(text)], strict=True):
        piece = text[a:b]
        stripped = piece.strip()
        if not stripped:
            continue
        start = a + (len(piece) - len(piece.lstrip()))
        steps.append(Step(len(steps), stripped, start, start + len(stripped)))
    return steps


def step_id(candidate_id: str, config: StepsConfig, index: int) -> str:
    """Content id of one step: its candidate, the segmentation and its index."""
    return content_id([candidate_id, config.model_dump(mode="json"), index])


def checked_steps(candidate_id: str, response: str, config: StepsConfig) -> list[Step] | None:
    """``split_steps``, with the recipe's limit: None (skip) or an ``InputError`` above ``max_steps``."""
    steps = split_steps(response, config)
    if len(steps) > config.max_steps:
        if config.over_limit == "skip":
            return None
        raise InputError(
            f"steps.max_steps: candidate {candidate_id} has {len(steps)} steps, above the limit of "
            f"{config.max_steps}; raise steps.max_steps or set steps.over_limit: skip"
        )
    return steps


def steps_table(cands: pa.Table, config: StepsConfig) -> tuple[pa.Table, dict[str, int]]:
    """One ``steps`` row per step of every candidate with a response; and counts for the manifest."""
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table

    cols: dict[str, list] = {
        k: []
        for k in (
            "step_id", "prompt_id", "candidate_id", "step_index", "n_steps", "text",
            "char_start", "char_end", "prefix",
        )
    }  # fmt: skip
    skipped = 0
    has_error = "error" in cands.column_names
    rows = cands.select(
        ["candidate_id", "prompt_id", "response", *(["error"] if has_error else [])]
    ).to_pylist()
    for row in rows:
        response = row["response"]
        if response is None or (has_error and row["error"] is not None):
            continue
        steps = checked_steps(row["candidate_id"], response, config)
        if steps is None:
            skipped += 1
            continue
        for s in steps:
            cols["step_id"].append(step_id(row["candidate_id"], config, s.index))
            cols["prompt_id"].append(row["prompt_id"])
            cols["candidate_id"].append(row["candidate_id"])
            cols["step_index"].append(s.index)
            cols["n_steps"].append(len(steps))
            cols["text"].append(s.text)
            cols["char_start"].append(s.char_start)
            cols["char_end"].append(s.char_end)
            cols["prefix"].append(response[: s.char_end])
    table = conform("steps", pa.table(cols)) if cols["step_id"] else empty_table("steps")
    return table, {"steps": table.num_rows, "over_limit_skipped": skipped}
