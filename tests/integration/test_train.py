"""`prefmill train` for real: one tiny build with the embedded model, then each TRL method a step or two.

Every test trains on tables the fixture build produced, checks the loss TRL reports is finite, loads
the saved checkpoint and runs it, and checks the lineage that `prefmill lineage` shows.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the train extra (trl, peft) is not installed")

from prefmill.flows import run_build
from prefmill.flows.train import CHECKPOINT_FILE, TrainSummary, run_train
from prefmill.recipe import Recipe, parse_recipe
from prefmill.storage import Store
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.methods.kto import class_weights

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

DATASET = "traintiny"
OPEN_PROMPTS = [
    "Name a fruit that is yellow.",
    "Write one sentence about the sea.",
    "Say hello in French.",
    "Give a synonym of happy.",
]
RECIPE = """
dataset: traintiny
seed: 0
shard_size: 8
prompts:
  sources:
    - kind: arithmetic
      n: 4
      seed: 3
      max_operand: 9
    - kind: file
      path: open.jsonl
synthesis:
  k: 3
  temperature: 1.0
  max_new_tokens: 24
instantiation:
  min_margin: 0.0
  tau: 0.25
"""


def tiny_recipe(folder: Path, text: str = RECIPE) -> Recipe:
    (folder / "open.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in OPEN_PROMPTS))
    return parse_recipe(text, base_dir=folder)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, str]:
    folder = tmp_path_factory.mktemp("train")
    recipe = tiny_recipe(folder)
    # PREFMILL_TEST_TRAIN_ROOT: build into (and reuse) a fixed root while working on these tests
    root = os.environ.get("PREFMILL_TEST_TRAIN_ROOT") or str(folder / "data")
    summary = run_build(recipe, root)
    rows = {t.table: t.rows for t in summary.tables}
    assert rows["pairs"] >= 2 and rows["points"] >= 2, rows  # something to train on
    return recipe, root


def tiny(method: str, **extra: Any) -> TrainConfig:
    """One or two optimizer steps on two examples of at most 160 tokens (SmolLM2's chat template and
    system prompt take most of that: a shorter limit cuts completions to nothing); no held-out
    evaluation."""
    body: dict[str, Any] = {
        "method": method,
        "max_steps": 1,
        "batch_size": 2,
        "max_length": 160,
        "learning_rate": 1e-4,
        "lora": {"r": 4, "alpha": 8},
        "eval": {"n": 0},
    }
    return TrainConfig.model_validate({**body, **extra})


def check_trained(
    root: str, summary: TrainSummary, table: str, *, causal: bool = True, ref: str = "latest"
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    assert not summary.cached and summary.steps >= 1
    assert summary.losses and all(math.isfinite(x) for x in summary.losses)
    assert math.isfinite(summary.train_loss)
    path = Path(summary.path)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert not (path / "adapter_config.json").exists()  # LoRA merged: a plain model folder
    loader = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
    model = loader.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2 plus 2?"}], return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    with torch.no_grad():
        out = model(ids)
    assert torch.isfinite(out.logits).all()
    # lineage: the checkpoints version names the table version it was trained on, and the ref has it
    store = Store(root)
    m = store.manifest(DATASET, "checkpoints", summary.checkpoint)
    trained_on = store.resolve_version(DATASET, table, ref=ref)
    assert next((p.table, p.version) for p in m.parents) == (table, trained_on.version)
    assert m.config["method"] == summary.method
    assert store.read_ref(DATASET, ref).tables["checkpoints"] == summary.checkpoint
    row = store.read_arrow(m).to_pylist()[0]
    assert row["path"] == str(path) and row["train_version"] == trained_on.version
    on_disk = json.loads((path / CHECKPOINT_FILE).read_text())
    assert on_disk["checkpoint"] == summary.checkpoint and on_disk["train_version"] == trained_on.version


def test_dpo_with_evaluation_and_cache(built: tuple[Recipe, str]) -> None:
    _recipe, root = built
    config = tiny("dpo", eval={"n": 2, "max_new_tokens": 16})
    summary = run_train(config, root, DATASET)
    check_trained(root, summary, "pairs")
    assert summary.eval_n == 2 and summary.eval_version is not None
    assert summary.accuracy_before is not None and summary.accuracy_after is not None
    store = Store(root)
    evals = store.read_arrow(store.manifest(DATASET, "train_eval", summary.eval_version)).to_pylist()
    assert sorted(r["phase"] for r in evals) == ["after", "after", "before", "before"]
    assert all(r["reference"] and r["score"] in (0.0, 1.0) for r in evals)
    prompts = set(store.read(DATASET, "prompts").column("prompt_id").to_pylist())
    assert not prompts & {r["prompt_id"] for r in evals}  # held out from the training prompts
    before = [r["score"] for r in evals if r["phase"] == "before"]
    assert summary.accuracy_before == sum(before) / 2
    again = run_train(config, root, DATASET)  # unchanged inputs: the checkpoint is found, no training
    assert again.cached and again.checkpoint == summary.checkpoint and again.path == summary.path


def test_dpo_ipo_loss(built: tuple[Recipe, str]) -> None:
    _, root = built
    summary = run_train(tiny("dpo", loss_type="ipo"), root, DATASET)
    check_trained(root, summary, "pairs")
    m = Store(root).manifest(DATASET, "checkpoints", summary.checkpoint)
    assert m.config["loss_type"] == "ipo"


def test_kto_on_points(built: tuple[Recipe, str]) -> None:
    _, root = built
    summary = run_train(tiny("kto"), root, DATASET)
    check_trained(root, summary, "points")
    # class balance (on by default): computed from the rows' labels and recorded as trained ({} when
    # the labels are already in TRL's band, as here: tests/unit/test_kto_balance.py covers the weights)
    labels = Store(root).read(DATASET, "points").column("label").to_pylist()
    desirable = sum(bool(x) for x in labels)
    expected = class_weights(desirable, len(labels) - desirable)
    on_disk = json.loads((Path(summary.path) / CHECKPOINT_FILE).read_text())
    assert on_disk["trl_from_rows"] == expected


def test_reward_model_with_margins(built: tuple[Recipe, str]) -> None:
    _, root = built
    summary = run_train(tiny("reward"), root, DATASET)
    check_trained(root, summary, "pairs", causal=False)


def test_grpo_with_verifier_reward(built: tuple[Recipe, str]) -> None:
    _, root = built
    config = tiny("grpo", num_generations=2, max_completion_length=8)
    check_trained(root, run_train(config, root, DATASET), "prompts")


def test_simpo(built: tuple[Recipe, str]) -> None:
    _, root = built
    check_trained(root, run_train(tiny("simpo"), root, DATASET), "pairs")


def test_orpo(built: tuple[Recipe, str]) -> None:
    _, root = built
    check_trained(root, run_train(tiny("orpo"), root, DATASET), "pairs")


def test_missing_trainer_names_the_trl_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    from prefmill.trainers import runner
    from prefmill.trainers.methods import METHODS

    missing = replace(
        METHODS["orpo"],
        trl_modules=("trl.experimental.nothing", "trl"),
        trl_config="X",
        trl_trainer="NoSuchTrainer",
    )
    monkeypatch.setitem(METHODS, "orpo", missing)
    with pytest.raises(
        runner.TrainerError, match=rf"NoSuchTrainer, which the installed TRL {version('trl')}"
    ):
        runner.trainer_classes("orpo")
    _config_cls, trainer_cls = runner.trainer_classes("simpo")
    assert trainer_cls.__name__ == "CPOTrainer"


def test_iterate_two_rounds_samples_from_the_previous_checkpoint(
    built: tuple[Recipe, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from prefmill.cli import run
    from prefmill.flows.iterate import run_iterate
    from prefmill.trainers.config import IterateConfig

    recipe, root = built
    it = IterateConfig(rounds=2, mode="dpo")
    summary = run_iterate(recipe, root, train=tiny("dpo", eval={"n": 2, "max_new_tokens": 12}), it=it)
    one, two = summary.rounds
    store = Store(root)
    assert one.policy == "transformers:smollm2"
    assert two.policy == f"transformers:{one.train.path}"
    cands = store.manifest(DATASET, "candidates", two.candidates)
    assert cands.config["policies"][0]["engine"] == two.policy  # round 2 sampled from round 1's checkpoint
    assert two.candidates != one.candidates and two.pairs != one.pairs
    assert {c["generator"] for c in store.read_arrow(cands).to_pylist()} == {two.policy}
    # fresh prompts: round 2's arithmetic problems differ from round 1's
    p1 = set(store.read(DATASET, "prompts", ref="round-1").column("prompt_id").to_pylist())
    p2 = set(store.read(DATASET, "prompts", ref="round-2").column("prompt_id").to_pylist())
    assert p1 != p2
    ck2 = store.manifest(DATASET, "checkpoints", two.train.checkpoint)
    parents = {(p.table, p.version) for p in ck2.parents}
    assert parents == {("pairs", two.pairs), ("checkpoints", one.train.checkpoint)}
    assert two.train.base_model == f"checkpoints@{one.train.checkpoint}"
    assert store.read_ref(DATASET, "round-2").tables["checkpoints"] == two.train.checkpoint
    for r in summary.rounds:
        assert math.isfinite(r.train.train_loss) and r.train.accuracy_after is not None
    # `prefmill lineage` walks round 2's checkpoint back through round 1's
    capsys.readouterr()
    code = run(
        ["lineage", "checkpoints", "--ref", "round-2", "--root", root, "--dataset", DATASET, "-f", "json"]
    )
    assert code == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["version"] == two.train.checkpoint
    inner = next(p for p in tree["parents"] if p["table"] == "checkpoints")
    assert inner["version"] == one.train.checkpoint
    assert {p["table"] for p in inner["parents"]} == {"pairs"}


def test_spin_round_pairs_reference_against_policy_samples(built: tuple[Recipe, str]) -> None:
    from prefmill.flows.iterate import run_iterate
    from prefmill.trainers.config import IterateConfig

    recipe, root = built
    summary = run_iterate(recipe, root, train=tiny("dpo"), it=IterateConfig(rounds=1, mode="spin"))
    (one,) = summary.rounds
    store = Store(root)
    pairs = store.read_arrow(store.manifest(DATASET, "pairs", one.pairs)).to_pylist()
    prompts = {p["prompt_id"]: p for p in store.read(DATASET, "prompts", ref="round-1").to_pylist()}
    with_ref = [pid for pid, p in prompts.items() if p["reference"] is not None]
    k = recipe.synthesis.k
    assert len(pairs) == len(with_ref) * k  # every sample of every prompt with a reference
    for p in pairs:
        assert p["strategy"] == "spin" and p["chosen"] == prompts[p["prompt_id"]]["reference"]
    check_trained(root, one.train, "pairs", ref="round-1")
