"""Export formats: DuckDB SQL that turns a prefmill table into the columns a training library expects.

Each format is declared, as data, by the module of the table it reads (``prefmill.storage.tables``);
``rows`` (the table's own columns, unchanged) fits any table. TRL's dataset types
(https://huggingface.co/docs/trl/dataset_formats), each in its standard (text) or conversational
(lists of ``{role, content}``) format:

- ``trl-preference`` (pairs): ``prompt``, ``chosen``, ``rejected`` — DPOTrainer and friends.
- ``trl-unpaired`` (points): ``prompt``, ``completion``, ``label`` — KTOTrainer.
- ``trl-prompt-only`` (prompts): ``prompt``, plus ``reference`` and ``prompt_id`` that TRL passes on
  to reward functions — GRPOTrainer / RLOOTrainer.
- ``trl-reward`` (pairs): implicit-prompt preference ``chosen``, ``rejected`` (the prompt is part of
  each) and ``margin`` — RewardTrainer.

The SQL reads the view ``source`` (the exported table, after ``--where``) and ``prompts`` (for the
chat of conversational formats).
"""

from __future__ import annotations

from prefmill.errors import ExportError
from prefmill.storage.tables import EXPORT_FORMATS, ExportFormat

Format = ExportFormat

#: Every export format by name (built from the table registry).
FORMATS: dict[str, ExportFormat] = EXPORT_FORMATS


def get_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown export format '{name}': choose one of {', '.join(FORMATS)}") from None


def format_sql(fmt: ExportFormat, table: str, conversational: bool) -> str:
    """The SQL of ``fmt`` over ``table``; a clear error when the table does not fit the format."""
    if fmt.table is not None and table != fmt.table:
        raise ExportError(
            f"format '{fmt.name}' exports the '{fmt.table}' table, not '{table}'; "
            f"export {fmt.table} (or use --format rows)"
        )
    if conversational and fmt.chat_sql is None:
        raise ExportError(f"format '{fmt.name}' has no conversational form")
    return fmt.chat_sql if conversational and fmt.chat_sql else fmt.sql
