"""`train --method prm` for real on the embedded model: a few steps of token classification at the
step separators, then the saved folder loads and scores steps (the `prm` judge's work)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the train extra (trl, peft) is not installed")

from prefmill.engines.model_cache import resolve_model
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.prm import load_prm, score_steps
from prefmill.trainers.runner import train

pytestmark = pytest.mark.slow

ROWS = [
    {
        "prompt": "What is 2 + 3 * 4?",
        "completions": ["3 * 4 = 12.", "2 + 12 = 14.", "The answer is 14."],
        "labels": [True, True, True],
    },
    {
        "prompt": "What is 5 * 2 + 1?",
        "completions": ["5 * 2 = 12.", "12 + 1 = 13.", "The answer is 13."],
        "labels": [False, False, False],
    },
]


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    config = TrainConfig.model_validate(
        {"method": "prm", "max_steps": 3, "batch_size": 2, "max_length": 96, "learning_rate": 1e-3,
         "lora": {"r": 4, "alpha": 8}, "eval": {"n": 0}}
    )  # fmt: skip
    out = tmp_path_factory.mktemp("prm") / "model"
    result = train(ROWS, config, resolve_model("smollm2"), out)
    assert result.steps == 3 and result.model_class.endswith("ForTokenClassification")
    assert result.losses and all(math.isfinite(x) for x in result.losses)
    return out, result.losses


def test_prm_trains_saves_and_scores_steps(prm_dir: tuple[Path, list[float]]) -> None:
    path, losses = prm_dir
    assert (path / "model.safetensors").is_file() and not (path / "adapter_config.json").exists()
    model, tokenizer, separator = load_prm(str(path))
    assert separator == "\n" and model.config.num_labels == 2
    steps = ROWS[1]["completions"]
    scores = score_steps(model, tokenizer, ROWS[1]["prompt"], steps, separator)
    assert len(scores) == len(steps) and all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    good = score_steps(model, tokenizer, ROWS[0]["prompt"], ROWS[0]["completions"], separator)
    assert sum(good) > sum(scores)  # three steps at lr 1e-3 already tell the two apart
    assert losses[-1] < losses[0]


def test_prm_judge_scores_each_step_and_aggregates(prm_dir: tuple[Path, list[float]]) -> None:
    import pyarrow as pa

    from prefmill.recipe.steps import StepsConfig
    from prefmill.tasks.evaluation.judges.prm import PRMJudge
    from prefmill.tasks.evaluation.prm_judge import prm_judge

    path, _ = prm_dir
    cands = pa.table(
        {
            "candidate_id": ["good", "bad"],
            "prompt_id": ["p1", "p2"],
            "response": ["\n".join(r["completions"]) for r in ROWS],
            "messages": [[{"role": "user", "content": r["prompt"]}] for r in ROWS],
        }
    )
    config = PRMJudge(kind="prm", model=str(path), segmenter=StepsConfig(segmenter="lines"))
    rows = prm_judge(config, cands).to_pylist()
    steps = [r for r in rows if r["granularity"] == "step"]
    outcome = {r["candidate_id"]: r["score"] for r in rows if r["granularity"] == "outcome"}
    assert [(r["candidate_id"], r["unit_index"]) for r in steps] == [("good", i) for i in range(3)] + [
        ("bad", i) for i in range(3)
    ]
    assert all(0.0 <= r["score"] <= 1.0 and r["kind"] == "reward_model" for r in steps)
    assert outcome == {c: min(r["score"] for r in steps if r["candidate_id"] == c) for c in ("good", "bad")}
    model, tokenizer, sep = load_prm(str(path))
    direct = score_steps(model, tokenizer, ROWS[1]["prompt"], ROWS[1]["completions"], sep)
    assert [r["score"] for r in steps if r["candidate_id"] == "bad"] == pytest.approx(direct)
