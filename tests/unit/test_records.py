"""The one JSONL record reader and its one-line error format."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefmill.errors import InputError
from prefmill.records import read_csv, read_jsonl, record_error


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


def test_csv_records_are_numbered_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes('\ufeff\n a , b\n1,"two\nlines"\n\n3,é\r\n4,"x\n\ny"\n5,z\n'.encode())
    assert list(read_csv(path)) == [
        (3, {" a ": "1", " b": "two\nlines"}),
        (6, {" a ": "3", " b": "é"}),
        (7, {" a ": "4", " b": "x\n\ny"}),
        (10, {" a ": "5", " b": "z"}),
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            b'a,b\n1,"x\ny"\n2\n',
            r"^r\.csv line 4: the row has 1 cells but the header has 2; quote cells that hold a comma, "
            r"or make the row match the header$",
        ),
        (b"a,b\n1,2\n3,\xff\n", r"^r\.csv line 3: not UTF-8 text \(.*\); save the file as UTF-8$"),
        (b"\na,b,a\n1,2,3\n", r"^r\.csv line 2: the header repeats column\(s\) a; give every column a"),
        (b"b,c\n1,2\n", r"^r\.csv line 1: the header lacks a; add it to the header row \(columns: a, b\)$"),
        (b"\n \n", r"^r\.csv line 1: no header row \(the file is empty\); start the file with a header"),
    ],
)
def test_csv_errors_name_file_line_problem_and_fix(tmp_path: Path, payload: bytes, message: str) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=message):
        list(read_csv(path, name="r.csv", required=["a"], columns_hint="a, b"))


def test_csv_unreadable_empty_and_ragged_rows_taken_by_the_caller(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.csv: cannot read the file"):
        list(read_csv(tmp_path / "missing.csv"))
    path = tmp_path / "r.csv"
    path.write_text("")
    assert list(read_csv(path)) == []
    path.write_text('a,b\n1\n"2\n",3\n4,5,6\n')
    ragged: list[tuple[int, list[str], list[str]]] = []
    rows = read_csv(path, on_width=lambda line, cells, header: ragged.append((line, cells, header)))
    assert list(rows) == [(3, {"a": "2\n", "b": "3"})]
    assert ragged == [(2, ["1"], ["a", "b"]), (5, ["4", "5", "6"], ["a", "b"])]
