"""The one line-numbered reader of JSONL record files, with one error format.

Every error is one line: ``<file> line <n>: <what is wrong>; <what to do>`` (``InputError``), the
format the other readers' row checks use too (``record_error``). Lines count from 1, blank lines
count as lines and are skipped, and a UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefmill.errors import InputError


def record_error(name: str | Path, line: int, what: str, fix: str) -> InputError:
    """The error of one record: ``<name> line <line>: <what>; <fix>``."""
    return InputError(f"{name} line {line}: {what}; {fix}")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def read_jsonl(path: str | Path, *, name: str | None = None, example: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file. ``name`` (default: the path)
    names the file in errors; ``example`` (e.g. ``{"prompt": "..."}``) is shown when a line is not an
    object. Raises ``InputError`` for an unreadable file, non-UTF-8 text, invalid JSON or a non-object."""
    path = Path(path)
    label = name if name is not None else str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the file ({exc.strerror}); check its path and permissions"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise record_error(label, line, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8") from None
    decode = json.JSONDecoder().decode
    like = f" like {example}" if example else ""
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            row = decode(line)
        except ValueError as exc:
            msg = getattr(exc, "msg", str(exc))
            col = getattr(exc, "colno", None)
            where = f": column {col}" if col is not None else ""
            raise record_error(
                label, lineno, f"not valid JSON ({msg}{where})", "fix or remove the line"
            ) from None
        if type(row) is not dict:
            raise record_error(
                label,
                lineno,
                f"not a JSON object but {_kind(row)}",
                f"each line must be one JSON object{like}; fix or remove the line",
            )
        yield lineno, row
