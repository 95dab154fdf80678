"""The one JSONL record reader and its one-line error format."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefmill.errors import InputError
from prefmill.records import read_jsonl, record_error


def test_lines_count_from_one_with_blank_lines_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes('\ufeff{"a": 1}\n\n  \n{"a": "é"}\n'.encode())
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": "é"})]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"a": 1}\n{oops\n', r"^r\.jsonl line 2: not valid JSON \(.*column 2\); fix or remove the line$"),
        (
            b'{"a": 1}\n[1]\n',
            r"^r\.jsonl line 2: not a JSON object but a list; each line must be one JSON "
            r'object like \{"a": \.\.\.\}; fix or remove the line$',
        ),
        (b'{"a": 1}\n\n"\xff"\n', r"^r\.jsonl line 3: not UTF-8 text \(.*\); save the file as UTF-8$"),
    ],
)
def test_errors_name_file_line_problem_and_fix(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=message):
        list(read_jsonl(path, name="r.jsonl", example='{"a": ...}'))


def test_unreadable_file_and_row_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read the file"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    assert (
        str(record_error("f.csv", 3, "score is 'x'", "write a number"))
        == "f.csv line 3: score is 'x'; write a number"
    )
