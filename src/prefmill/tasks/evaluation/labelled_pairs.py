"""A labelled pairwise dataset as candidates plus human verdicts, in one step.

One record (a JSONL line, a CSV row, a Parquet row) is one labelled pair:

=====================  ==========================================================================
``prompt``             the prompt as text (or ``messages``: a chat, as in prompt files)
``response_a``         with ``response_b`` and ``label``: the two responses and which is better,
``response_b``         ``label`` one of ``A`` / ``B`` / ``tie`` (also ``response_a``, ``model_a``,
``label``              ``a``, ``draw``..., any case)
``chosen``             or, instead: the better response ...
``rejected``           ... and the worse one
=====================  ==========================================================================

The prompt may be a whole conversation (earlier user / assistant turns, ending with the user's),
and ``chosen`` / ``rejected`` may be conversations too: TRL's conversational preference format
(``prompt`` as messages, ``chosen`` / ``rejected`` lists ending with the assistant's reply) or
Anthropic HH-style full conversations sharing every turn but the last, whose shared turns become
the prompt (``prefmill.tasks.evaluation.chat_pairs``).

``labelled_tables`` turns the file into the three tables a build would have made: ``prompts`` (the
prompt-file loader, so ids match a prompt file holding the same prompts), ``candidates`` (the offline
import, ``generator`` ``offline:<file name>``, one candidate per distinct response of a prompt) and
``judgments`` (one ``human:<annotator>`` pair verdict per record: ``prefers_first`` 1 when
``response_a`` / ``chosen`` is better, 0 when the other is, 0.5 for a tie). The human verdicts are
gold for the fidelity report, so a judge run over these candidates is measured against them without
re-labelling; the same file also serves as ``evaluation.fidelity.calibration``. Anything wrong is an
``InputError`` naming the file, the line and the fix; nothing is imported from a file with an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.records import read_csv, read_jsonl
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.chat_pairs import chat_pair, is_conversational
from prefmill.tasks.prompts.loaders import check_messages

LABELS = {
    **dict.fromkeys(("a", "response_a", "model_a", "first", "1"), 1.0),
    **dict.fromkeys(("b", "response_b", "model_b", "second", "2"), 0.0),
    **dict.fromkeys(("tie", "draw", "equal", "tie (bothbad)", "both_bad", "both_good"), 0.5),
}
FIELDS = ("prompt", "messages", "response_a", "response_b", "label", "chosen", "rejected")
EXAMPLE = (
    '{"prompt": ..., "response_a": ..., "response_b": ..., "label": "A"} or '
    '{"prompt": ..., "chosen": ..., "rejected": ...}'
)


@dataclass(frozen=True)
class LabelledPair:
    """One record: where it is, its prompt as a chat, the two responses, P(a is better)."""

    where: str
    messages: list[dict[str, str]]
    a: str
    b: str
    p_a: float


def _records(path: Path, fmt: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = (fmt or {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(
        path.suffix.lower(), ""))  # fmt: skip
    if not path.is_file():
        raise InputError(f"{path}: no such file; fix the path of the labelled pairs")
    if kind == "jsonl":
        for line, item in read_jsonl(path, example=EXAMPLE):
            yield f"{path} line {line}", item
    elif kind == "csv":
        for line, row in read_csv(path, required=("prompt",), columns_hint=", ".join(FIELDS)):
            yield f"{path} line {line}", {k: v for k, v in row.items() if k and v != ""}
    elif kind == "parquet":
        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield f"{path} row {i}", row
    else:
        raise InputError(f"{path}: unknown format '{path.suffix}'; use a .jsonl, .csv or .parquet file")


def _text(item: dict[str, Any], field: str, where: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: '{field}' must be non-empty text; every labelled pair needs it")
    return value


def _messages(item: dict[str, Any], where: str) -> list[dict[str, str]]:
    chat = item.get("messages")
    if chat in (None, "") and isinstance(item.get("prompt"), list):
        chat = item["prompt"]  # TRL's conversational prompt with text responses
    if isinstance(chat, str) and chat.strip().startswith("["):
        chat = json.loads(chat)
    if chat:
        if not (
            isinstance(chat, list)
            and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in chat)
        ):
            raise InputError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in chat]
        if (problem := check_messages(messages)) is not None:
            raise InputError(f"{where}: 'messages' is not a usable prompt: {problem}")
        return messages
    return [{"role": "user", "content": _text(item, "prompt", where)}]


def as_chosen_rejected(item: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A ``{prompt, response_a, response_b, label}`` record as ``{prompt/messages, chosen, rejected}``;
    None for a tie."""
    a, b = _text(item, "response_a", where), _text(item, "response_b", where)
    label = str(item.get("label", "")).strip().lower()
    if label not in LABELS:
        raise InputError(
            f"{where}: label {item.get('label')!r} is not A, B or tie; say which response is better"
        )
    if LABELS[label] == 0.5:
        return None
    chosen, rejected = (a, b) if LABELS[label] == 1.0 else (b, a)
    rest = {k: v for k, v in item.items() if k in ("prompt", "messages")}
    return {**rest, "chosen": chosen, "rejected": rejected}


def read_labelled_pairs(path: str | Path, fmt: str | None = None) -> list[LabelledPair]:
    """Every record of a labelled pairs file (see the module docstring)."""
    file = Path(path)
    out = []
    for where, item in _records(file, fmt):
        if not isinstance(item, dict):
            raise InputError(f"{where}: a labelled pair is an object; e.g. {EXAMPLE}")
        if is_conversational(item):
            messages, a, b = chat_pair(item, where)
            p_a = 1.0
        elif "chosen" in item or "rejected" in item:
            messages = _messages(item, where)
            a, b, p_a = _text(item, "chosen", where), _text(item, "rejected", where), 1.0
        elif "response_a" in item or "response_b" in item:
            messages = _messages(item, where)
            a, b = _text(item, "response_a", where), _text(item, "response_b", where)
            label = str(item.get("label", "")).strip().lower()
            if label not in LABELS:
                raise InputError(
                    f"{where}: label {item.get('label')!r} is not A, B or tie; say which response is better"
                )
            p_a = LABELS[label]
        else:
            raise InputError(
                f"{where}: no responses; give response_a, response_b and label, or chosen and rejected"
            )
        if a == b:
            raise InputError(f"{where}: the two responses are the same text")
        out.append(LabelledPair(where, messages, a, b, p_a))
    if not out:
        raise InputError(f"{file}: holds no labelled pairs")
    return out


def _prompts(pairs: list[LabelledPair], source: str) -> pa.Table:
    """The prompts table, through the prompt-file loader (same ids, columns and checks)."""
    import tempfile

    from prefmill.tasks.prompts.build import combine
    from prefmill.tasks.prompts.loaders import load_file

    seen: dict[str, list[dict[str, str]]] = {}
    for p in pairs:
        seen.setdefault(content_id({"messages": p.messages}), p.messages)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "prompts.jsonl"
        tmp.write_text("".join(json.dumps({"messages": m}) + "\n" for m in seen.values()), encoding="utf-8")
        prompts, _ = combine([load_file(tmp, source=source)])
    return prompts


def labelled_tables(
    path: str | Path, annotator: str = "labels", fmt: str | None = None
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(prompts, candidates, judgments) of a labelled pairs file."""
    from prefmill.tasks.synthesis.offline import OfflineSpec, import_offline

    file = Path(path)
    pairs = read_labelled_pairs(file, fmt)
    prompts = _prompts(pairs, file.name)
    pids, texts, wheres, index = [], [], [], {}
    for p in pairs:
        pid = content_id({"messages": p.messages})
        for text in (p.a, p.b):
            if (pid, text) not in index:
                index[(pid, text)] = len(pids)
                pids.append(pid)
                texts.append(text)
                wheres.append(p.where)
    rows = pa.table(
        {
            "prompt_id": pa.array(pids, pa.string()),
            "response": pa.array(texts, pa.string()),
            "model": pa.nulls(len(pids), pa.string()),
            "rating": pa.nulls(len(pids), pa.float64()),
            "location": pa.array(wheres, pa.string()),
        }
    )
    order = list(dict.fromkeys(prompts.column("prompt_id").to_pylist()))
    candidates = import_offline(OfflineSpec(path=str(file)), rows, order)
    ids = {
        (r["prompt_id"], r["response"]): r["candidate_id"]
        for r in candidates.select(["prompt_id", "response", "candidate_id"]).to_pylist()
    }
    judge = f"human:{annotator}"
    out: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for p in pairs:
        pid = content_id({"messages": p.messages})
        first, other = ids[(pid, p.a)], ids[(pid, p.b)]
        jid = content_id([judge, first, other, "overall", "outcome", None, None])
        if jid in seen:
            raise InputError(f"{p.where}: repeats the pair of {seen[jid]} (same prompt and responses)")
        seen[jid] = p.where
        out.append(
            {
                "judgment_id": jid, "prompt_id": pid, "candidate_id": first, "other_candidate_id": other,
                "judge": judge, "kind": "human", "mode": "pair", "criterion": "overall",
                "granularity": "outcome", "unit_index": None, "order": None, "score": None,
                "prefers_first": p.p_a, "rationale": None, "raw": json.dumps({"where": p.where}),
                "parse_error": None,
            }
        )  # fmt: skip
    judgments = conform("judgments", pa.Table.from_pylist(out, schema=empty_table("judgments").schema))
    return prompts, candidates, judgments
