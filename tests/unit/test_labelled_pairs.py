"""A labelled pairwise dataset imports in one step as prompts, candidates and human pair verdicts
(JSONL with A/B/tie labels, CSV with chosen/rejected, Parquet), gold for the fidelity report; bad
rows are one-line errors naming the line; the same file is a calibration file."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefmill.cli import run
from prefmill.errors import InputError
from prefmill.storage import Store
from prefmill.tasks.evaluation.calibration import load_calibration
from prefmill.tasks.evaluation.labelled_pairs import labelled_tables

ROWS = [
    {"prompt": "2+2?", "response_a": "4", "response_b": "5", "label": "A"},
    {"prompt": "2+2?", "response_a": "22", "response_b": "4", "label": "response_b"},
    {"prompt": "Name a colour.", "response_a": "Red.", "response_b": "Blue.", "label": "tie"},
]


def _jsonl(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_labelled_pairs_become_candidates_and_human_verdicts(tmp_path: Path) -> None:
    prompts, candidates, judgments = labelled_tables(_jsonl(tmp_path, ROWS))
    assert prompts.num_rows == 2
    by_text = {r["response"]: r["candidate_id"] for r in candidates.to_pylist()}
    assert sorted(by_text) == ["22", "4", "5", "Blue.", "Red."]  # "4" is one candidate in two pairs
    assert set(candidates.column("generator").to_pylist()) == {"offline:pairs.jsonl"}
    verdicts = {
        (r["candidate_id"], r["other_candidate_id"]): r["prefers_first"] for r in judgments.to_pylist()
    }
    assert verdicts == {
        (by_text["4"], by_text["5"]): 1.0,
        (by_text["22"], by_text["4"]): 0.0,
        (by_text["Red."], by_text["Blue."]): 0.5,
    }
    assert set(judgments.column("judge").to_pylist()) == {"human:labels"}
    assert set(judgments.column("kind").to_pylist()) == {"human"}


def test_csv_chosen_rejected_and_parquet_give_the_same_ids(tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("prompt,chosen,rejected\n2+2?,4,5\n")
    _, c_csv, j_csv = labelled_tables(csv)
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}]), parquet)
    _, c_pq, j_pq = labelled_tables(parquet)
    assert j_csv.column("prefers_first").to_pylist() == j_pq.column("prefers_first").to_pylist() == [1.0]
    assert c_csv.column("prompt_id").to_pylist() == c_pq.column("prompt_id").to_pylist()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"prompt": "q", "response_a": "x", "response_b": "y", "label": "maybe"},
            "line 2: label 'maybe' is not A, B",
        ),
        ({"prompt": "q", "response_a": "x", "label": "A"}, "line 2: 'response_b' must be non-empty text"),
        ({"prompt": "q", "chosen": "x", "rejected": "x"}, "line 2: the two responses are the same text"),
        ({"response_a": "x", "response_b": "y", "label": "A"}, "line 2: 'prompt' must be non-empty text"),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        labelled_tables(_jsonl(tmp_path, [ROWS[0], row]))


def test_import_command_and_calibration_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, root = _jsonl(tmp_path, ROWS), str(tmp_path / "data")
    assert run(["import-pairs", str(path), "--dataset", "lab", "--root", root]) == 0
    store = Store(root)
    ref = store.read_ref("lab", "labelled")
    assert sorted(ref.tables) == ["candidates", "judgments", "prompts"]
    assert store.manifest("lab", "judgments", ref.tables["judgments"]).stats["human_verdicts"] == 3
    assert "judgments@" in capsys.readouterr().out
    assert run(["import-pairs", str(tmp_path / "nope.jsonl"), "--dataset", "lab", "--root", root]) == 1
    # the same file calibrates a judge: the tie is left out, response_b's label picks response_b
    cands, truth = load_calibration(path)
    assert len(truth) == 2 and cands.num_rows == 4
