"""Export formats: DuckDB SQL that turns a prefmill table into the columns a training library expects.

TRL's dataset types (https://huggingface.co/docs/trl/dataset_formats), each in its standard (text) or
conversational (lists of ``{role, content}``) format:

- ``trl-preference`` (pairs): ``prompt``, ``chosen``, ``rejected`` — DPOTrainer and friends.
- ``trl-unpaired`` (points): ``prompt``, ``completion``, ``label`` — KTOTrainer.
- ``trl-prompt-only`` (prompts): ``prompt``, plus ``reference`` and ``prompt_id`` that TRL passes on
  to reward functions — GRPOTrainer / RLOOTrainer.
- ``trl-reward`` (pairs): implicit-prompt preference ``chosen``, ``rejected`` (the prompt is part of
  each) and ``margin`` — RewardTrainer.
- ``rows``: the table's own columns, unchanged.

The SQL reads the view ``source`` (the exported table, after ``--where``) and ``prompts`` (for the
chat of conversational formats).
"""

from __future__ import annotations

from dataclasses import dataclass

from prefmill.errors import ExportError


@dataclass(frozen=True)
class Format:
    name: str
    table: str | None  # the table it reads by default (None: any)
    columns: tuple[str, ...]  # the columns TRL documents, in order (standard format)
    sql: str  # standard format
    chat_sql: str | None  # conversational format
    trainer: str


def _assistant(column: str) -> str:
    return f"[{{'role': 'assistant', 'content': {column}}}]"


_CHAT = "(SELECT messages FROM prompts AS p WHERE p.prompt_id = s.prompt_id)"

FORMATS: dict[str, Format] = {
    "trl-preference": Format(
        "trl-preference",
        "pairs",
        ("prompt", "chosen", "rejected"),
        "SELECT prompt, chosen, rejected FROM source AS s",
        f"SELECT {_CHAT} AS prompt, {_assistant('chosen')} AS chosen, {_assistant('rejected')} AS rejected "
        "FROM source AS s",
        "DPOTrainer (and other preference trainers: IPO, ORPO, CPO, ...)",
    ),
    "trl-unpaired": Format(
        "trl-unpaired",
        "points",
        ("prompt", "completion", "label"),
        "SELECT prompt, completion, label FROM source AS s",
        f"SELECT {_CHAT} AS prompt, {_assistant('completion')} AS completion, label FROM source AS s",
        "KTOTrainer",
    ),
    "trl-prompt-only": Format(
        "trl-prompt-only",
        "prompts",
        ("prompt", "reference", "prompt_id"),
        "SELECT list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt, reference, prompt_id "
        "FROM source AS s",
        "SELECT messages AS prompt, reference, prompt_id FROM source AS s",
        "GRPOTrainer / RLOOTrainer (reference and prompt_id reach the reward functions)",
    ),
    "trl-reward": Format(
        "trl-reward",
        "pairs",
        ("chosen", "rejected", "margin"),
        "SELECT concat_ws('\n\n', prompt, chosen) AS chosen, "
        "concat_ws('\n\n', prompt, rejected) AS rejected, margin FROM source AS s",
        f"SELECT list_concat({_CHAT}, {_assistant('chosen')}) AS chosen, "
        f"list_concat({_CHAT}, {_assistant('rejected')}) AS rejected, margin FROM source AS s",
        "RewardTrainer (implicit prompt; margin is used when present)",
    ),
    "rows": Format("rows", None, (), "SELECT * FROM source", "SELECT * FROM source", "any"),
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown export format '{name}': choose one of {', '.join(FORMATS)}") from None


def format_sql(fmt: Format, table: str, conversational: bool) -> str:
    """The SQL of ``fmt`` over ``table``; a clear error when the table does not fit the format."""
    if fmt.table is not None and table != fmt.table:
        raise ExportError(
            f"format '{fmt.name}' exports the '{fmt.table}' table, not '{table}'; "
            f"export {fmt.table} (or use --format rows)"
        )
    if conversational and fmt.chat_sql is None:
        raise ExportError(f"format '{fmt.name}' has no conversational form")
    return fmt.chat_sql if conversational and fmt.chat_sql else fmt.sql
