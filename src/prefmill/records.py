"""The one line-numbered reader of record files (JSONL and CSV), with one error format.

Every error is one line: ``<file> line <n>: <what is wrong>; <what to do>`` (``InputError``), the
format the other readers' row checks use too (``record_error``). Lines are the file's physical lines,
counted from 1; blank lines count as lines and are skipped, and a UTF-8 byte-order mark is ignored.
A CSV record is numbered by the line it starts on (a quoted cell may span lines), its header included
(the first data row of a plain CSV file is line 2). Parquet and dataset folders are tables, not record
files: their readers number rows, not lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
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


def _text(path: Path, label: str) -> str:
    """The file's text; ``InputError`` when it cannot be read or is not UTF-8 (naming the line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the file ({exc.strerror}); check its path and permissions"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise record_error(label, line, f"not UTF-8 text ({exc.reason})", "save the file as UTF-8") from None


def read_jsonl(path: str | Path, *, name: str | None = None, example: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file. ``name`` (default: the path)
    names the file in errors; ``example`` (e.g. ``{"prompt": "..."}``) is shown when a line is not an
    object. Raises ``InputError`` for an unreadable file, non-UTF-8 text, invalid JSON or a non-object."""
    path = Path(path)
    label = name if name is not None else str(path)
    text = _text(path, label)
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


#: What ``read_csv`` calls for a row whose cell count differs from the header's:
#: ``(line, cells, header)``; without one such a row is an error.
OnWidth = Callable[[int, list[str], list[str]], None]


def read_csv(
    path: str | Path,
    *,
    name: str | None = None,
    required: Iterable[str] = (),
    columns_hint: str = "",
    on_width: OnWidth | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) for every non-blank record of a CSV file with a header row.

    The number is the physical line the record starts on. The header is the first row with a
    non-blank cell (blank lines before it are skipped); ``name`` (default: the path) names the file in
    errors. Raises ``InputError`` for an unreadable file, non-UTF-8 text, a header repeating a column,
    a header lacking a ``required`` column (``columns_hint`` tells which columns the file may have), no
    header at all when columns are ``required``, a record the csv module cannot parse, and a row with
    another number of cells than the header (unless ``on_width`` takes it). An empty file with nothing
    required yields nothing."""
    path = Path(path)
    label = name if name is not None else str(path)
    reader = csv.reader(io.StringIO(_text(path, label), newline=""))
    needed = list(required)
    hint = f" (columns: {columns_hint})" if columns_hint else ""
    start = 1
    try:
        header: list[str] | None = None
        for cells in reader:
            if any(cell.strip() for cell in cells):
                header = cells
                break
            start = reader.line_num + 1
        if header is None:
            if needed:
                raise record_error(
                    label,
                    1,
                    "no header row (the file is empty)",
                    f"start the file with a header naming its columns, at least {', '.join(needed)}{hint}",
                )
            return
        if len(set(header)) != len(header):
            dupes = sorted({h for h in header if header.count(h) > 1})
            raise record_error(
                label,
                start,
                f"the header repeats column(s) {', '.join(dupes)}",
                "give every column a distinct name",
            )
        missing = sorted(set(needed) - set(header))
        if missing:
            raise record_error(
                label,
                start,
                f"the header lacks {', '.join(missing)}",
                f"add {'them' if len(missing) > 1 else 'it'} to the header row{hint}",
            )
        width = len(header)
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue
            if len(cells) != width:
                if on_width is None:
                    raise record_error(
                        label,
                        line,
                        f"the row has {len(cells)} cells but the header has {width}",
                        "quote cells that hold a comma, or make the row match the header",
                    )
                on_width(line, cells, header)
                continue
            yield line, dict(zip(header, cells, strict=True))
    except csv.Error as exc:
        raise record_error(
            label, start, f"not readable as CSV ({exc})", "fix the quoting of the record starting there"
        ) from None
