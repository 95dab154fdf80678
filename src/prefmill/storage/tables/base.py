"""What an output-table module declares: its ``Table`` (schema, id column, stage, SQL, exports, order).

Every table of prefmill is one module of ``prefmill.storage.tables`` holding ``TABLE = Table(...)``;
the registry in ``prefmill.storage.tables`` collects them, and every list of table names elsewhere
(schemas, id columns, the stage order, the instantiation outputs, the export formats, the recipe's
choices) is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

#: The element type of ``prompts.messages`` (and of every chat column).
MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])

_OPTIONAL = {b"optional": b"1"}


def column(name: str, typ: pa.DataType, nullable: bool = True, *, optional: bool = False) -> pa.Field:
    """A column; ``optional`` ones (always nullable) are null-filled by ``conform`` when absent."""
    return pa.field(name, typ, nullable=nullable or optional, metadata=_OPTIONAL if optional else None)


def is_optional(field: pa.Field) -> bool:
    """Whether ``conform`` fills this declared column with nulls when a table lacks it."""
    return bool(field.metadata) and field.metadata.get(b"optional") == b"1"


@dataclass(frozen=True)
class ExportFormat:
    """DuckDB SQL that turns a table into the columns a training library expects.

    The SQL reads the view ``source`` (the exported table, after ``--where``) and ``prompts`` (for
    the chat of conversational formats). ``table`` is filled in by the registry with the name of
    the table module that declares the format (None: any table)."""

    name: str
    columns: tuple[str, ...]  # the columns the library documents, in order (standard format)
    sql: str  # standard format
    chat_sql: str | None  # conversational format
    trainer: str
    summary: str  # one phrase for the recipe reference, e.g. "prompt/chosen/rejected, from pairs"
    table: str | None = None

    @property
    def reads_prompts(self) -> bool:
        """Whether the conversational SQL reads the ``prompts`` table (for the chat)."""
        return PROMPT_CHAT in (self.chat_sql or "")


@dataclass(frozen=True)
class Table:
    """One prefmill table: everything the rest of the code needs to know about it."""

    name: str
    schema: pa.Schema
    stage: str  # the stage (or command) that writes it
    order: int  # rank in listings: the stage order, then the order within a stage
    id_column: str | None = None  # the content-id column, used by ``diff`` and de-duplication
    #: for instantiation outputs: the built-in ``prefmill/sql/<sql>.sql`` that makes the table
    sql: str | None = None
    #: for outputs whose rows then go through selection: the built-in selection SQL file
    selection_sql: str | None = None
    #: for outputs with selection: the row order of the built-in SQL's output, applied once when the
    #: selected rows are read out (the built-in SQL itself leaves its rows unordered)
    row_order: tuple[str, ...] = ()
    exports: tuple[ExportFormat, ...] = ()
    doc: str = ""  # what one row is


def assistant(column_name: str) -> str:
    """SQL of a one-message assistant chat holding ``column_name``."""
    return f"[{{'role': 'assistant', 'content': {column_name}}}]"


#: SQL of the prompt's chat, for conversational export formats over ``source AS s``.
PROMPT_CHAT = "(SELECT messages FROM prompts AS p WHERE p.prompt_id = s.prompt_id)"


def chat_text(messages: str) -> str:
    """SQL of a chat as text for the standard (text) export formats: the last user message; for a
    conversation with earlier assistant turns, every turn as ``Role: text``, separated by blank lines."""
    return (
        f"CASE WHEN list_contains(list_transform({messages}, lambda x: x.role), 'assistant') "
        f"THEN array_to_string(list_transform({messages}, lambda x: upper(left(x.role, 1)) || "
        "substr(x.role, 2) || ': ' || x.content), chr(10) || chr(10)) "
        f"ELSE list_filter({messages}, lambda x: x.role = 'user')[-1].content END"
    )


#: SQL of the prompt as text, for standard export formats over ``source AS s`` (a table with
#: ``prompt_id`` and the ``prompt`` text column): the whole conversation when the prompt has earlier
#: turns (from ``prompts``, which the export always defines), else the table's own ``prompt``.
PROMPT_TEXT = (
    f"coalesce((SELECT {chat_text('p.messages')} FROM prompts AS p WHERE p.prompt_id = s.prompt_id "
    "AND list_contains(list_transform(p.messages, lambda x: x.role), 'assistant')), s.prompt)"
)

#: The format every table has: its own columns, unchanged.
ROWS = ExportFormat(
    "rows", (), "SELECT * FROM source", "SELECT * FROM source", "any", "the table as it is", table=None
)
