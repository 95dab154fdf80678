"""`train --method prm` for real on the embedded model: the train flow on a hand-made steps version and
its step labels, a few steps of token classification at the step separators, then the saved folder
loads and scores steps (the `prm` judge's work)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the train extra (trl, peft) is not installed")

from prefmill.flows.train import run_train
from prefmill.storage import Parent, Store
from prefmill.tasks.evaluation.prm_model import load_prm, score_steps
from prefmill.trainers.config import TrainConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]
DS = "prmtiny"

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


def _store(root: Path) -> Store:
    """prompts -> steps -> step-level judgments (the labels of ROWS), as a build with rollouts makes."""
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table
    from prefmill.tasks.steps.config import StepsConfig
    from prefmill.tasks.steps.segment import steps_table

    store = Store(str(root))
    ids = [f"p{i}" for i in range(len(ROWS))]
    prompts = conform(
        "prompts",
        pa.table(
            {
                "prompt_id": ids,
                "messages": [[{"role": "user", "content": r["prompt"]}] for r in ROWS],
                "source": ["t"] * len(ROWS),
                "reference": [None] * len(ROWS),
                "rubric": [None] * len(ROWS),
                "meta": [None] * len(ROWS),
            }
        ),
    )
    made = {"stage": "test", "code_version": "1"}
    pm = store.write_version(DS, "prompts", prompts, config={"t": "prompts"}, **made)
    cands = pa.table(
        {"candidate_id": ids, "prompt_id": ids, "response": ["\n".join(r["completions"]) for r in ROWS]}
    )
    steps, _ = steps_table(cands, StepsConfig(segmenter="lines"))
    sm = store.write_version(
        DS, "steps", steps, config={"t": "steps"}, parents=[Parent("prompts", pm.version)], **made
    )
    schema = empty_table("judgments").schema
    rows = [
        {**dict.fromkeys(schema.names), "judgment_id": f"{cid}-{i}", "prompt_id": cid, "candidate_id": cid,
         "judge": "mc", "kind": "verifier", "mode": "point", "criterion": "overall", "granularity": "step",
         "unit_index": i, "score": float(ok)}
        for cid, r in zip(ids, ROWS, strict=True) for i, ok in enumerate(r["labels"])
    ]  # fmt: skip
    parents = [Parent("prompts", pm.version), Parent("steps", sm.version)]
    judgments = conform("judgments", pa.Table.from_pylist(rows, schema=schema))
    jm = store.write_version(DS, "judgments", judgments, config={"t": "j"}, parents=parents, **made)
    store.write_ref(DS, "latest", {"prompts": pm.version, "steps": sm.version, "judgments": jm.version})
    return store


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> tuple[Path, list[float]]:
    """`prefmill train --method prm` (the train flow) on the steps version and its labels."""
    root = tmp_path_factory.mktemp("prm") / "data"
    store = _store(root)
    config = TrainConfig.model_validate(
        {"method": "prm", "max_steps": 3, "batch_size": 2, "max_length": 96, "learning_rate": 1e-3,
         "lora": {"r": 4, "alpha": 8}, "eval": {"n": 0}}
    )  # fmt: skip
    summary = run_train(config, str(root), DS)
    assert summary.steps == 3 and summary.rows == 2 and summary.input.startswith("steps@")
    assert summary.losses and all(math.isfinite(x) for x in summary.losses)
    m = store.manifest(DS, "checkpoints", summary.checkpoint)
    assert [p.table for p in m.parents] == ["steps", "judgments"]  # the labels decide the checkpoint too
    assert store.read_arrow(m).to_pylist()[0]["model_class"].endswith("ForTokenClassification")
    return Path(summary.path), summary.losses


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

    from prefmill.tasks.evaluation.judges.prm import PRMJudge
    from prefmill.tasks.evaluation.prm_judge import prm_judge
    from prefmill.tasks.steps.config import StepsConfig

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
