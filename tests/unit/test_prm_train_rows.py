"""`train --method prm` without a model: the steps table + step labels -> TRL stepwise rows, and the
token layout of one row (labels only at the separator after each step)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from test_rollout_judges import SHARD, Continuer

from prefmill.errors import InputError
from prefmill.exports.stepwise import stepwise_rows
from prefmill.storage import Manifest, Parent, Store
from prefmill.tasks.evaluation.judges.rollout_search import RolloutSearchJudge
from prefmill.tasks.evaluation.prm_model import IGNORE, encode
from prefmill.tasks.evaluation.rollouts import binary_search, solutions, step_judgments
from prefmill.tasks.steps.config import StepsConfig
from prefmill.tasks.steps.segment import steps_table
from prefmill.trainers.methods import METHODS

DS = "prm"


class CharTokenizer:
    """One token per character (id = code point); bos 1."""

    bos_token_id = 1

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]


def test_encode_puts_each_step_label_on_its_separator() -> None:
    e = encode(CharTokenizer(), "q", ["ab", "c"], [True, False], "\n", 64)
    assert e.input_ids == [1, ord("q"), 10, ord("a"), ord("b"), 10, ord("c"), 10]
    assert e.labels == [IGNORE] * 5 + [1, IGNORE, 0]
    assert e.positions == [5, 7] and all(e.input_ids[p] == 10 for p in e.positions)
    last = encode(CharTokenizer(), "q", ["ab", "c"], [True, False], "\n", 64, last_step_only=True)
    assert last.labels == [IGNORE] * 7 + [0]
    cut = encode(CharTokenizer(), "q", ["ab", "c"], [True, False], "\n", 6)
    assert cut.positions == [5] and cut.labels[-1] == 1 and len(cut.input_ids) == 6


def _write(store: Store, table: str, rows: pa.Table, parents: list[Manifest]) -> Manifest:
    return store.write_version(
        DS, table, rows, stage="test", code_version="1", config={"t": table},
        parents=[Parent(p.table, p.version) for p in parents],
    )  # fmt: skip


def test_stepwise_rows_of_a_steps_version(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    prompts = pa.table(
        {
            "prompt_id": ["p"],
            "messages": [[{"role": "user", "content": "compute, ref=14"}]],
            "source": ["t"],
            "reference": ["14"],
            "rubric": pa.nulls(1, pa.string()),
            "meta": ["{}"],
        }
    )
    pm = _write(store, "prompts", prompts, [])
    steps, _ = steps_table(SHARD, StepsConfig())
    sm = _write(store, "steps", steps, [pm])
    with pytest.raises(InputError, match=rf"steps@{sm.version} has no judgments made from it"):
        stepwise_rows(store, sm)
    config = RolloutSearchJudge(kind="rollout_search", n=2, verifier="arithmetic", segmenter=StepsConfig())
    sols = solutions(config, SHARD)
    binary_search(config, Continuer(), sols)
    _write(store, "judgments", step_judgments(config, sols, soft=False), [pm, sm])
    rows = METHODS["prm"].rows(stepwise_rows(store, sm), None, "steps@v").rows
    wrong = next(r for r in rows if r["labels"] == [True, True, True, False, False, False, False, False])
    assert wrong["prompt"] == "compute, ref=14" and wrong["completions"][0] == "Step 1: ok"
    assert all(len(r["completions"]) == len(r["labels"]) for r in rows)
    assert set(rows[0]) == {"prompt", "completions", "labels"}
