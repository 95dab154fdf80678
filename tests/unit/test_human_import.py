"""Human verdicts imported from CSV / JSONL: rows, ids, and errors that name file, line and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation.human import human_judgments

CANDIDATES = pa.table({"candidate_id": ["a1", "a2", "b1"], "prompt_id": ["pa", "pa", "pb"]})


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_points_and_pairs(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "v.jsonl",
        [
            {"annotator": "ann", "candidate_id": "a1", "score": 4, "rationale": "clear"},
            "",
            {"annotator": "bob", "candidate_id": "a1", "other_candidate_id": "a2", "prefers_first": True},
            {"annotator": "bob", "candidate_id": "b1", "score": "0.5", "criterion": "honesty"},
            {"annotator": "ann", "candidate_id": "a2", "other_candidate_id": "a1", "prefers_first": 0.25},
        ],
    )
    out = human_judgments(path, None, CANDIDATES)
    conform("judgments", out)
    rows = out.to_pylist()
    assert [(r["judge"], r["mode"], r["candidate_id"], r["other_candidate_id"]) for r in rows] == [
        ("human:ann", "point", "a1", None),
        ("human:bob", "pair", "a1", "a2"),
        ("human:bob", "point", "b1", None),
        ("human:ann", "pair", "a2", "a1"),
    ]
    assert [r["score"] for r in rows] == [4.0, None, 0.5, None]
    assert [r["prefers_first"] for r in rows] == [None, 1.0, None, 0.25]
    assert [r["prompt_id"] for r in rows] == ["pa", "pa", "pb", "pa"]
    assert [r["criterion"] for r in rows] == ["overall", "overall", "honesty", "overall"]
    assert {(r["kind"], r["granularity"], r["order"], r["parse_error"]) for r in rows} == {
        ("human", "outcome", None, None)
    }
    assert rows[0]["rationale"] == "clear" and json.loads(rows[0]["raw"])["score"] == 4
    assert rows[0]["judgment_id"] == content_id(["human:ann", "a1", None, "overall", "outcome", None, None])
    assert rows[1]["judgment_id"] == content_id(["human:bob", "a1", "a2", "overall", "outcome", None, None])


def test_csv_with_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(
        "annotator,candidate_id,score,other_candidate_id,prefers_first\nann,a1,1,,\nann,a2,,a1,0\n"
    )
    rows = human_judgments(path, None, CANDIDATES).to_pylist()
    assert [(r["mode"], r["score"], r["prefers_first"]) for r in rows] == [
        ("point", 1.0, None),
        ("pair", None, 0.0),
    ]


def test_csv_errors_name_the_line_a_record_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text('annotator,candidate_id,score,rationale\nann,a1,1,"two\nlines"\n\nann,nope,1,"a\nb"\n')
    with pytest.raises(InputError, match=r"v\.csv line 5: candidate_id 'nope' is not a candidate"):
        human_judgments(path, None, CANDIDATES)
    path.write_text("annotator,candidate_id,score\nann,a1\n")
    with pytest.raises(InputError, match=r"v\.csv line 2: the row has 2 cells but the header has 3"):
        human_judgments(path, None, CANDIDATES)
    path.write_text("")
    with pytest.raises(InputError, match=r"v\.csv line 1: no header row"):
        human_judgments(path, None, CANDIDATES)


def test_empty_file_gives_no_rows(tmp_path: Path) -> None:
    assert human_judgments(write_jsonl(tmp_path / "v.jsonl", [""]), None, CANDIDATES).num_rows == 0


BAD_ROWS = [
    ({"annotator": "ann", "candidate_id": "zz", "score": 1}, r"line 2: candidate_id 'zz' is not a candidate"),
    (
        {"annotator": "ann", "candidate_id": "a1", "other_candidate_id": "zz", "prefers_first": 1},
        r"line 2: other_candidate_id 'zz' is not a candidate",
    ),
    (
        {"annotator": "ann", "candidate_id": "a1", "other_candidate_id": "b1", "prefers_first": 1},
        r"line 2: candidates 'a1' and 'b1' must be two different responses to the same prompt",
    ),
    ({"candidate_id": "a1", "score": 1}, r"line 2: annotator is missing"),
    ({"annotator": "ann", "score": 1}, r"line 2: candidate_id is missing"),
    ({"annotator": "ann", "candidate_id": "a1"}, r"line 2: give a score \(point verdict\) or"),
    ({"annotator": "ann", "candidate_id": "a1", "score": "good"}, r"line 2: score 'good' is not a number"),
    (
        {"annotator": "ann", "candidate_id": "a1", "other_candidate_id": "a2", "prefers_first": 2},
        r"line 2: prefers_first 2 must be a finite number in \[0, 1\]",
    ),
    (
        {"annotator": "ann", "candidate_id": "a1", "other_candidate_id": "a2", "score": 1},
        r"line 2: a pair verdict has other_candidate_id and prefers_first, and no score",
    ),
    ({"annotator": "ann", "candidate_id": "a1", "score": 1, "stars": 5}, r"line 2: unknown field\(s\) stars"),
    ({"annotator": "bob", "candidate_id": "a2", "score": 1}, r"line 2: repeats the verdict of line 1"),
    ("[1, 2]", r"line 2: not a JSON object but a list; each line must be one JSON object"),
    ("{oops", r"line 2: not valid JSON"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    path = write_jsonl(
        tmp_path / "verdicts.jsonl", [{"annotator": "bob", "candidate_id": "a2", "score": 1}, row]
    )
    with pytest.raises(InputError, match=r"verdicts\.jsonl " + message):
        human_judgments(path, None, CANDIDATES)


def test_bad_csv_and_files(tmp_path: Path) -> None:
    csv_path = tmp_path / "v.csv"
    csv_path.write_text("annotator,candidate_id,score\nann,a1,1\nann,nope,1\n")
    with pytest.raises(
        InputError, match=r"v\.csv line 3: candidate_id 'nope' is not a candidate of this build"
    ):
        human_judgments(csv_path, None, CANDIDATES)
    csv_path.write_text("who,candidate_id,score\nann,a1,1\n")
    with pytest.raises(InputError, match=r"v\.csv line 1: the header lacks annotator"):
        human_judgments(csv_path, None, CANDIDATES)
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read the human verdicts file"):
        human_judgments(tmp_path / "missing.jsonl", None, CANDIDATES)
    with pytest.raises(InputError, match=r"unknown verdicts format 'txt'"):
        human_judgments(tmp_path / "v.txt", None, CANDIDATES)
    txt = write_jsonl(tmp_path / "v.txt", [{"annotator": "a", "candidate_id": "a1", "score": 1}])
    assert human_judgments(txt, "jsonl", CANDIDATES).num_rows == 1
