"""Load prompts from JSONL, CSV or Parquet files into a ``prompts`` table and a ``prompts_rejected`` table.

A row gives its prompt in one of two ways:

* as text in ``field`` (default ``prompt``), which becomes ``[{"role": "user", "content": text}]``;
* as a chat in ``messages_field`` (default ``messages``): a list of ``{role, content}`` objects with roles
  in system / user / assistant, whose last message is the user's. In CSV the cell holds that list as
  JSON text. When a row has both, the chat wins and the text is kept in ``meta``. A chat may hold a
  whole conversation (system, then user / assistant turns, ending with the user's turn to answer):
  synthesis answers that last turn with the earlier ones as context, judges see them, and the
  output tables keep them through ``prompt_id``;
* as a ShareGPT-style chat in ``conversations`` (when the row has no ``messages_field``): a list of
  ``{from, value}`` objects, ``from`` one of system / human / gpt (or user / assistant).

``reference`` (gold answer) and ``rubric`` are optional: a reference that is not a string (a number, a
list) is turned into text (``42`` -> ``"42"``, lists / objects -> canonical JSON); a rubric that is not a
string is JSON-dumped; empty / whitespace-only values count as absent. ``meta`` is the canonical JSON of
the row's remaining fields (``"{}"`` when there are none). ``prompt_id`` is
``content_id({"messages": messages})``: it depends on the messages only, so the same text gives the same
id whatever the file, format, line or source.

Locations (used in rejections, errors and the extra ``location`` column):

* JSONL: ``prompts.jsonl:12`` is line 12 of the file (1-based; blank lines count as lines).
* CSV: ``prompts.csv:row 5`` is the record that starts on line 5 of the file, the header being line 1
  -- the row number a spreadsheet shows, and the editor line when no cell spans lines.
* Parquet: ``prompts.parquet:row 5`` is the 5th data row (1-based).

Two kinds of problems:

* the whole file is unusable (missing, empty, a malformed JSONL line, unreadable CSV / Parquet, no
  column holding prompts): ``InputError`` with one line naming the file, the line and the fix;
* one row is unusable (no prompt, empty prompt, a prompt that is not text, malformed messages): the row
  goes to the rejected table with its location, the reason and the row as JSON text, and the load
  goes on.

The returned prompts table has the declared ``prompts`` columns plus a trailing ``location`` column
that ``build.combine`` uses to report duplicates and then drops.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import InputError
from prefmill.ids import ID_LENGTH, canonical_json, content_id
from prefmill.records import read_csv, read_jsonl
from prefmill.storage.schemas import MESSAGE, conform

# The string encoder json.dumps(..., ensure_ascii=False) uses (C version when available).
_encode_str = json.encoder.encode_basestring
#: The extra column naming where each prompt came from (``prompts.jsonl:12``); ``combine`` drops it.
LOCATION = "location"
ROLES = frozenset({"system", "user", "assistant"})
#: The field of ShareGPT-style chats, and its speaker names as roles.
SHAREGPT_FIELD = "conversations"
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_KINDS = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _kind(value: Any) -> str:
    """How a JSON-ish value is named in messages: 'a number', 'a list', ..."""
    return _KINDS.get(type(value), f"a {type(value).__name__}")


def _json_cell(value: Any) -> tuple[Any, str | None]:
    """A chat field as data: JSON text (a CSV cell) is parsed; the reason when it does not parse."""
    if not isinstance(value, str):
        return value, None
    try:
        return json.loads(value), None
    except ValueError as exc:
        return None, f"not JSON ({exc})"


class _Sink:
    """Column buffers for accepted and rejected rows (no per-row Arrow work)."""

    def __init__(
        self, source: str, field: str, messages_field: str, reference_field: str, rubric_field: str
    ) -> None:
        self.source = source
        self.field = field
        self.messages_field = messages_field
        self.reference_field = reference_field
        self.rubric_field = rubric_field
        # Fields that do not go into ``meta``.
        self.not_meta = frozenset({field, messages_field, reference_field, rubric_field, SHAREGPT_FIELD})
        self.ids: list[str] = []
        self.offsets: list[int] = [0]
        self.roles: list[str] = []
        self.contents: list[str] = []
        self.references: list[str | None] = []
        self.rubrics: list[str | None] = []
        self.metas: list[str] = []
        self.locations: list[str] = []
        self.rej_locations: list[str] = []
        self.rej_reasons: list[str] = []
        self.rej_raws: list[str] = []
        self.rows = 0
        self.has_prompt_column = False
        self.columns_seen: set[str] = set()

    def reject(self, location: str, reason: str, row: dict[str, Any]) -> None:
        self.rej_locations.append(location)
        self.rej_reasons.append(reason)
        self.rej_raws.append(canonical_json(row))

    def add(self, row: dict[str, Any], location: str) -> None:
        """Validate one row and buffer it as a prompt or a rejection."""
        self.rows += 1
        field, messages_field = self.field, self.messages_field
        text = row.get(field)
        chat = row.get(messages_field)
        if not self.has_prompt_column and (field in row or messages_field in row or SHAREGPT_FIELD in row):
            self.has_prompt_column = True
        if isinstance(chat, str) and not chat.strip():
            chat = None  # an empty CSV cell
        chat_field = messages_field
        if chat is None and row.get(SHAREGPT_FIELD) not in (None, ""):
            chat_field = SHAREGPT_FIELD
            shared, bad = _json_cell(row[SHAREGPT_FIELD])
            if bad is not None:
                self.reject(location, f"malformed chat in '{SHAREGPT_FIELD}': {bad}", row)
                return
            converted = sharegpt_messages(shared)
            if isinstance(converted, str):
                self.reject(location, f"malformed chat in '{SHAREGPT_FIELD}': {converted}", row)
                return
            chat = converted
        if chat is not None:
            chat, bad = _json_cell(chat)
            if bad is not None:
                self.reject(location, f"malformed messages in '{messages_field}': {bad}", row)
                return
            problem = check_messages(chat)
            if problem is not None:
                self.reject(location, f"malformed messages in '{chat_field}': {problem}", row)
                return
            messages = [{"role": m["role"], "content": m["content"]} for m in chat]
            prompt_id = content_id({"messages": messages})
            for m in messages:
                self.roles.append(m["role"])
                self.contents.append(m["content"])
            used = messages_field
        elif text is None:
            if field in row:
                reason = f"field '{field}' is null"
            else:
                reason = f"missing field '{field}' (and no '{messages_field}')"
            self.reject(location, reason, row)
            return
        elif type(text) is str:
            if not text or text.isspace():
                self.reject(location, f"empty prompt in field '{field}'", row)
                return
            prompt_id = _text_id(text)
            self.roles.append("user")
            self.contents.append(text)
            used = field
        else:
            self.reject(location, f"prompt in field '{field}' is {_kind(text)}, not text", row)
            return

        reference = row.get(self.reference_field)
        if reference is not None:
            reference = _as_text(reference, json_dump=False)
        rubric = row.get(self.rubric_field)
        if rubric is not None:
            rubric = _as_text(rubric, json_dump=True)
        if len(row) == 1:
            meta = "{}"
        else:
            skip = self.not_meta
            extra = {k: v for k, v in row.items() if k not in skip}
            if used == messages_field and text is not None and text != "":
                extra[field] = text  # both given: the chat won, the text is kept
            meta = canonical_json(extra)
        self.ids.append(prompt_id)
        self.offsets.append(len(self.roles))
        self.references.append(reference)
        self.rubrics.append(rubric)
        self.metas.append(meta)
        self.locations.append(location)

    def tables(self) -> tuple[pa.Table, pa.Table]:
        n = len(self.ids)
        messages = pa.ListArray.from_arrays(
            pa.array(self.offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [pa.array(self.roles, pa.string()), pa.array(self.contents, pa.string())],
                fields=list(MESSAGE),
            ),
        )
        prompts = pa.table(
            {
                "prompt_id": pa.array(self.ids, pa.string()),
                "messages": messages,
                "source": pa.array([self.source] * n, pa.string()),
                "reference": pa.array(self.references, pa.string()),
                "rubric": pa.array(self.rubrics, pa.string()),
                "meta": pa.array(self.metas, pa.string()),
                LOCATION: pa.array(self.locations, pa.string()),
            }
        )
        rejected = pa.table(
            {
                "source": pa.array([self.source] * len(self.rej_locations), pa.string()),
                "location": pa.array(self.rej_locations, pa.string()),
                "reason": pa.array(self.rej_reasons, pa.string()),
                "raw": pa.array(self.rej_raws, pa.string()),
            }
        )
        return conform("prompts", prompts), conform("prompts_rejected", rejected)


def _text_id(text: str) -> str:
    """``content_id({"messages": [{"role": "user", "content": text}]})``, without building the dicts.

    The canonical JSON of that object is spelled out here (sorted keys, no spaces); a unit test checks
    that both give the same id.
    """
    body = '{"messages":[{"content":' + _encode_str(text) + ',"role":"user"}]}'
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:ID_LENGTH]


def sharegpt_messages(chat: Any) -> list[dict[str, Any]] | str:
    """A ShareGPT-style chat (``[{from, value}, ...]``) as ``{role, content}`` messages, or what is
    wrong with it (checked further by ``check_messages``)."""
    if not isinstance(chat, list):
        return f"expected a list of {{from, value}} objects, got {_kind(chat)}"
    out: list[dict[str, Any]] = []
    for i, m in enumerate(chat):
        if not isinstance(m, dict):
            return f"message {i} is not an object"
        who = m.get("from")
        role = SHAREGPT_ROLES.get(who.lower()) if isinstance(who, str) else None
        if role is None:
            return f"message {i} is from {who!r}; use one of system, human, gpt"
        out.append({"role": role, "content": m.get("value")})
    return out


def check_messages(chat: Any) -> str | None:
    """None when ``chat`` is a valid prompt chat (a conversation whose last turn is the user's, system
    messages first), else what is wrong with it and what to do."""
    if not isinstance(chat, list):
        return (
            f"expected a list of {{role, content}} objects, got {_KINDS.get(type(chat), type(chat).__name__)}"
        )
    if not chat:
        return "the list is empty"
    for i, m in enumerate(chat):
        if not isinstance(m, dict):
            return f"message {i} is not an object"
        role = m.get("role")
        if role not in ROLES:
            return f"message {i} has role {role!r}; use one of system, user, assistant"
        if not isinstance(m.get("content"), str):
            return f"message {i} has no text 'content'"
        if role == "system" and i > 0 and chat[i - 1]["role"] != "system":
            return (
                f"message {i} is a system message after the conversation started; put system messages first"
            )
    if chat[-1]["role"] != "user":
        return (
            f"the last message is from '{chat[-1]['role']}'; it must be from 'user' (the turn to answer): "
            "drop the final reply, or import replies as offline responses / labelled pairs"
        )
    if not chat[-1]["content"].strip():
        return "the last user message is empty"
    return None


def _as_text(value: Any, *, json_dump: bool) -> str | None:
    """Optional text column: None / blank -> None, str kept, others stringified (numbers) or JSON-dumped."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if not json_dump and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return canonical_json(value)


def load_file(
    path: Path,
    *,
    fmt: str | None = None,
    field: str = "prompt",
    messages_field: str = "messages",
    reference_field: str = "reference",
    rubric_field: str = "rubric",
    source: str | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Read one prompt file; return ``(prompts, rejected)`` (see the module docstring for the rules).

    ``fmt`` (``jsonl``, ``csv``, ``parquet``) overrides the format given by the file's suffix; ``source``
    defaults to the file name. Raises ``InputError`` when the file as a whole cannot be used.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path of this prompt source in the recipe")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file; point the prompt source at a file")
    kind = (fmt or FORMATS.get(path.suffix.lower(), "")).lower()
    if kind == "ndjson":
        kind = "jsonl"
    if kind not in ("jsonl", "csv", "parquet"):
        given = f"format '{fmt}'" if fmt else f"suffix '{path.suffix}'"
        raise InputError(
            f"{path}: unknown {given}; use a .jsonl, .ndjson, .csv or .parquet file or set the source's "
            "`format` to jsonl, csv or parquet"
        )
    sink = _Sink(source or path.name, field, messages_field, reference_field, rubric_field)
    if kind == "jsonl":
        _read_jsonl(path, sink)
    elif kind == "csv":
        _read_csv(path, sink)
    else:
        _read_parquet(path, sink)
    if sink.rows == 0:
        raise InputError(
            f"{path}: file is empty (no rows); add prompts to it or remove the source from the recipe"
        )
    if not sink.has_prompt_column:
        raise InputError(
            f"{path}: no row has a '{field}' or '{messages_field}' field (fields found: "
            f"{', '.join(sorted(sink.columns_seen)) or 'none'}); set the source's `field` (text prompts) or "
            "`messages_field` (chat prompts) in the recipe to the right name"
        )
    return sink.tables()


def _read_jsonl(path: Path, sink: _Sink) -> None:
    name = path.name
    columns: set[str] = set()
    add = sink.add
    for lineno, row in read_jsonl(path, name=name, example='{"prompt": "..."}'):
        if not sink.has_prompt_column:
            columns.update(row)
        add(row, f"{name}:{lineno}")
    sink.columns_seen = columns


def _read_csv(path: Path, sink: _Sink) -> None:
    name = path.name
    columns: set[str] = set()

    def reject_width(line: int, cells: list[str], header: list[str]) -> None:
        columns.update(header)
        row: dict[str, Any] = {f"column {i + 1}": c for i, c in enumerate(cells)}
        sink.rows += 1
        sink.reject(f"{name}:row {line}", f"row has {len(cells)} cells but the header has {len(header)}", row)

    for line, row in read_csv(path, name=name, on_width=reject_width):
        if not columns:
            columns.update(row)
        sink.add(row, f"{name}:row {line}")
    sink.columns_seen = columns


def _read_parquet(path: Path, sink: _Sink) -> None:
    name = path.name
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable Parquet file ({first}); re-export it as Parquet") from None
    sink.columns_seen = set(table.column_names)
    for i, row in enumerate(table.to_pylist(), start=1):
        sink.add(row, f"{name}:row {i}")
