"""The reward-model judge on a real (tiny, randomly initialised) transformers sequence-classification
model built at test time with the embedded SmolLM2 tokenizer."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from prefmill.errors import EngineError
from prefmill.recipe import RewardModelJudge
from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation import judge_shard
from prefmill.tasks.evaluation.reward_model import (
    clear_reward_models,
    load_reward_model,
    reward_inputs,
    reward_scores,
)

pytestmark = pytest.mark.slow

RESPONSES = [
    "Paris is the capital of France.",
    "I think it is Lyon, but I am not sure at all, maybe Marseille.",
    "Paris.",
    "The capital of France is Paris, which is also its largest city and sits on the Seine.",
    "",
]


@cache
def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from prefmill.engines.model_cache import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


def tiny_model(folder: Path, num_labels: int) -> Path:
    """A 2-layer LlamaForSequenceClassification with random weights (seed 0) and SmolLM2's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        num_labels=num_labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("rm") / "tiny-rm", 1)


def cands(n: int = len(RESPONSES)) -> pa.Table:
    messages = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    ]
    return pa.table(
        {
            "candidate_id": [f"c{i}" for i in range(n)],
            "prompt_id": ["p"] * n,
            "response": RESPONSES[:n],
            "reference": pa.nulls(n, pa.string()),
            "messages": messages * n,
            "error": pa.nulls(n, pa.string()),
        }
    )


def test_scores_are_deterministic_batch_independent_and_ordered(rm_dir: Path) -> None:
    one = RewardModelJudge(kind="reward_model", model=str(rm_dir), batch_size=1)
    many = RewardModelJudge(kind="reward_model", model=str(rm_dir), batch_size=4)
    out = judge_shard(cands(), [many])
    conform("judgments", out)
    rows = out.to_pylist()
    assert [r["candidate_id"] for r in rows] == [f"c{i}" for i in range(len(RESPONSES))]
    assert {(r["judge"], r["kind"], r["mode"]) for r in rows} == {
        ("reward-model:tiny-rm", "reward_model", "point")
    }
    scores = [r["score"] for r in rows]
    assert len(set(scores)) == len(scores)  # different texts, different scores
    # each text scored alone gives the same score as in a padded batch of 4
    alone = [r["score"] for r in judge_shard(cands(), [one]).to_pylist()]
    assert alone == pytest.approx(scores, abs=1e-5)
    # and the same again after the cache is cleared and the model reloaded from disk
    clear_reward_models()
    again = [r["score"] for r in judge_shard(cands(), [many]).to_pylist()]
    assert again == pytest.approx(scores, abs=1e-6)
    assert rows[0]["rationale"].startswith(f"reward {scores[0]:.4f} over ")


def test_chat_template_and_truncation(rm_dir: Path) -> None:
    tokenizer, _ = load_reward_model(str(rm_dir))
    messages = [{"role": "user", "content": "Capital of France?"}]
    templated = reward_inputs(tokenizer, messages, "Paris.", use_template=True)
    assert "<|im_start|>user\nCapital of France?<|im_end|>" in templated
    assert "<|im_start|>assistant\nParis.<|im_end|>" in templated
    assert reward_inputs(tokenizer, messages, "Paris.", use_template=False) == "Capital of France?\n\nParis."
    with_template = RewardModelJudge(kind="reward_model", model=str(rm_dir))
    plain = RewardModelJudge(kind="reward_model", model=str(rm_dir), chat_template=False)
    a = judge_shard(cands(2), [with_template]).column("score").to_pylist()
    b = judge_shard(cands(2), [plain]).column("score").to_pylist()
    assert a != pytest.approx(b)  # the template changes what the model reads
    short = RewardModelJudge(kind="reward_model", model=str(rm_dir), max_length=8, name="rm-short")
    rows = judge_shard(cands(2), [short]).to_pylist()
    assert all(r["rationale"].endswith("over 8 tokens (truncated)") for r in rows)
    assert {r["judge"] for r in rows} == {"rm-short"}
    _, lengths, cut = reward_scores(short, ["a b c d e f g h i j k l m n o p"])
    assert lengths == [8] and cut == [True]


def test_sigmoid_and_two_label_heads(rm_dir: Path, tmp_path: Path) -> None:
    raw = judge_shard(cands(3), [RewardModelJudge(kind="reward_model", model=str(rm_dir))])
    squashed = judge_shard(cands(3), [RewardModelJudge(kind="reward_model", model=str(rm_dir), sigmoid=True)])
    expected = [1 / (1 + math.exp(-s)) for s in raw.column("score").to_pylist()]
    assert squashed.column("score").to_pylist() == pytest.approx(expected, abs=1e-6)
    two = tiny_model(tmp_path / "two", 2)
    probs = judge_shard(cands(3), [RewardModelJudge(kind="reward_model", model=str(two))]).column("score")
    assert all(0.0 < p < 1.0 for p in probs.to_pylist())
    three = tiny_model(tmp_path / "three", 3)
    with pytest.raises(EngineError, match="has 3 labels; use a 1-label"):
        load_reward_model(str(three))


def test_missing_or_wrong_folder_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="not found"):
        load_reward_model(str(tmp_path / "nope"))
    with pytest.raises(EngineError, match="cannot load a transformers sequence-classification model"):
        load_reward_model(str(tmp_path))
