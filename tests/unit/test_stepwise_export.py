"""`prefmill export steps --format trl-stepwise`: TRL's stepwise-supervision rows from the steps table
and the step-level judgments built from it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_rollout_judges import SHARD, Continuer

from prefmill.errors import ExportError
from prefmill.exports import export_table
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.judges.rollout_search import RolloutSearchJudge
from prefmill.tasks.evaluation.rollouts import binary_search, solutions, step_judgments
from prefmill.tasks.steps.config import StepsConfig
from prefmill.tasks.steps.segment import steps_table

DS = "sw"


def _write(store: Store, table: str, rows: pa.Table, parents: list[Manifest]) -> Manifest:
    return store.write_version(
        DS, table, rows, stage="test", code_version="1", config={"t": table},
        parents=[Parent(p.table, p.version) for p in parents],
    )  # fmt: skip


def test_stepwise_rows_have_trls_columns_and_the_step_labels(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    prompts = pa.table(
        {
            "prompt_id": ["p"],
            "messages": [
                [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "compute, ref=14"}]
            ],
            "source": ["t"],
            "reference": ["14"],
            "rubric": pa.nulls(1, pa.string()),
            "meta": ["{}"],
        }
    )
    pm = _write(store, "prompts", prompts, [])
    steps, _ = steps_table(SHARD, StepsConfig())
    sm = _write(store, "steps", steps, [pm])
    with pytest.raises(ExportError, match=r"steps@\w+ has no judgments made from it"):
        export_table(store, sm, fmt="trl-stepwise", out=tmp_path / "none")
    config = RolloutSearchJudge(kind="rollout_search", n=2, verifier="arithmetic", segmenter=StepsConfig())
    sols = solutions(config, SHARD)
    binary_search(config, Continuer(), sols)
    labels = step_judgments(config, sols, soft=False)
    partial = labels.filter(pa.compute.not_equal(labels.column("candidate_id"), "last"))
    _write(store, "judgments", partial.slice(0, partial.num_rows - 1), [pm, sm])  # "right" loses a step
    result = export_table(store, sm, fmt="trl-stepwise", out=tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert result.rows == 1 and list(rows[0])[:3] == ["prompt", "completions", "labels"]
    (row,) = rows  # "last" has no labels, "right" misses one: only whole solutions are exported
    assert row["candidate_id"] == "wrong" and row["prompt"] == "compute, ref=14"
    assert row["completions"][:2] == ["Step 1: ok", "Step 2: ok"] and len(row["completions"]) == 8
    assert row["labels"] == [True, True, True, False, False, False, False, False]
    assert "README.md" in result.files


def test_consensus_rows_decide_the_labels_when_there_are_any(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    prompts = pa.table(
        {
            "prompt_id": ["p"],
            "messages": [[{"role": "user", "content": "q"}]],
            "source": ["t"],
            "reference": ["14"],
            "rubric": pa.nulls(1, pa.string()),
            "meta": ["{}"],
        }
    )
    pm = _write(store, "prompts", prompts, [])
    steps, _ = steps_table(SHARD, StepsConfig())
    sm = _write(store, "steps", steps, [pm])
    config = RolloutSearchJudge(kind="rollout_search", n=1, verifier="arithmetic", segmenter=StepsConfig())
    sols = solutions(config, SHARD)
    binary_search(config, Continuer(), sols)
    labels = step_judgments(config, sols, soft=False)
    # a consensus judge kept every step of "right" only (say the judges disagreed elsewhere)
    right = labels.filter(pa.compute.equal(labels.column("candidate_id"), "right"))
    consensus = right.set_column(
        right.schema.get_field_index("judge"), "judge", pa.array(["step-consensus"] * right.num_rows)
    )
    _write(store, "judgments", pa.concat_tables([labels, consensus.cast(labels.schema)]), [pm, sm])
    export_table(store, sm, fmt="trl-stepwise", out=tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert [(r["candidate_id"], r["labels"]) for r in rows] == [("right", [True] * 5)]
