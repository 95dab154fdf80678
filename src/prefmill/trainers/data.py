"""prefmill tables -> TRL dataset rows (pure functions over Arrow tables; no torch, no TRL).

TRL's conversational formats are used, so a trainer applies the model's chat template exactly as
synthesis did: ``prompt`` is the prompt's chat (the ``messages`` of the ``prompts`` table, joined on
``prompt_id``), each completion is ``[{"role": "assistant", "content": ...}]``.

| method | table | TRL columns |
|---|---|---|
| dpo, cpo, simpo, orpo | pairs | prompt, chosen, rejected |
| reward | pairs | prompt, chosen, rejected, margin (when ``use_margin``) |
| kto | points | prompt, completion, label |
| grpo | prompts (or any table with prompt_id) | prompt, reference |
| prm | steps (+ its step-level judgments) | prompt, completions, labels (TRL's stepwise supervision) |

Rows are never dropped silently: a pair with ``weight`` <= 0 (a row its SQL marked "do not train") is
left out and counted, rows with a null text are an error naming the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from prefmill.errors import InputError

Messages = list[dict[str, str]]


@dataclass
class TrainRows:
    """A TRL-ready list of rows, and what the conversion left out."""

    rows: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)


def _messages_by_prompt(prompts: pa.Table | None) -> dict[str, Messages]:
    if prompts is None:
        return {}
    ids = prompts.column("prompt_id").to_pylist()
    msgs = prompts.column("messages").to_pylist()
    return {
        i: [{"role": m["role"], "content": m["content"]} for m in chat]
        for i, chat in zip(ids, msgs, strict=True)
    }


def _prompt_chat(prompt_id: str, text: str | None, chats: dict[str, Messages]) -> Messages:
    chat = chats.get(prompt_id)
    if chat is not None:
        return chat
    if text is None:
        raise InputError(f"prompt {prompt_id} has no text and is not in the prompts table")
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> Messages:
    return [{"role": "assistant", "content": text}]


def _need(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(f"table '{name}' lacks column(s) {', '.join(missing)} needed for training")


def _non_null(value: Any, table: str, row: int, column: str) -> Any:
    if value is None:
        raise InputError(
            f"table '{table}' row {row}: column '{column}' is null; fix the SQL that made the table "
            "or filter the row out"
        )
    return value


def pairs_to_preference(
    pairs: pa.Table, prompts: pa.Table | None = None, *, with_margin: bool = False
) -> TrainRows:
    """``pairs`` -> TRL preference rows (prompt, chosen, rejected[, margin])."""
    _need(pairs, "pairs", ("prompt_id", "prompt", "chosen", "rejected", "margin", "weight"))
    chats = _messages_by_prompt(prompts)
    out: list[dict[str, Any]] = []
    skipped = 0
    for i, r in enumerate(
        pairs.select(["prompt_id", "prompt", "chosen", "rejected", "margin", "weight"]).to_pylist()
    ):
        if r["weight"] is not None and r["weight"] <= 0:
            skipped += 1
            continue
        row: dict[str, Any] = {
            "prompt": _prompt_chat(r["prompt_id"], r["prompt"], chats),
            "chosen": _assistant(_non_null(r["chosen"], "pairs", i, "chosen")),
            "rejected": _assistant(_non_null(r["rejected"], "pairs", i, "rejected")),
        }
        if with_margin:
            row["margin"] = float(r["margin"] or 0.0)
        out.append(row)
    return TrainRows(out, {"weight<=0": skipped} if skipped else {})


def points_to_unpaired(points: pa.Table, prompts: pa.Table | None = None) -> TrainRows:
    """``points`` -> TRL unpaired preference rows (prompt, completion, label) for KTO."""
    _need(points, "points", ("prompt_id", "prompt", "completion", "label"))
    chats = _messages_by_prompt(prompts)
    out = []
    for i, r in enumerate(points.select(["prompt_id", "prompt", "completion", "label"]).to_pylist()):
        out.append(
            {
                "prompt": _prompt_chat(r["prompt_id"], r["prompt"], chats),
                "completion": _assistant(_non_null(r["completion"], "points", i, "completion")),
                "label": bool(_non_null(r["label"], "points", i, "label")),
            }
        )
    return TrainRows(out)


def prompts_to_grpo(table: pa.Table, prompts: pa.Table) -> TrainRows:
    """Prompts with a ``reference`` -> TRL prompt-only rows (prompt, reference) for GRPO.

    ``table`` is the prompts table itself or any table with ``prompt_id`` (pairs, points, lists), whose
    distinct prompts are looked up in ``prompts``. Prompts without a reference cannot be verified and
    are left out (counted)."""
    _need(table, "input", ("prompt_id",))
    wanted = list(dict.fromkeys(table.column("prompt_id").to_pylist()))
    chats = _messages_by_prompt(prompts)
    refs = dict(
        zip(prompts.column("prompt_id").to_pylist(), prompts.column("reference").to_pylist(), strict=True)
    )
    out = []
    no_ref = 0
    for pid in wanted:
        ref = refs.get(pid)
        if ref is None or pid not in chats:
            no_ref += 1
            continue
        out.append({"prompt": chats[pid], "reference": ref})
    return TrainRows(out, {"no reference": no_ref} if no_ref else {})


def completion_text(completion: Any) -> str:
    """The text of a TRL completion (a string, or a conversational list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    return str(completion)


def stepwise(table: pa.Table, where: str) -> TrainRows:
    """TRL stepwise-supervision rows (``prompt``, ``completions``, ``labels``) from the rows of
    ``prefmill.exports.stepwise.stepwise_rows``; a row with a null prompt or step is an error."""
    rows = []
    for r in table.select(["prompt", "completions", "labels", "candidate_id"]).to_pylist():
        if r["prompt"] is None or any(s is None for s in r["completions"]):
            raise InputError(f"train: {where} candidate {r['candidate_id']} has a null prompt or step")
        rows.append({"prompt": r["prompt"], "completions": r["completions"], "labels": r["labels"]})
    return TrainRows(rows)
