"""The ``reward_model`` judge: a transformers sequence-classification model scores (prompt, response).

Input text: with ``chat_template`` on and a tokenizer that has one, the prompt's messages plus the
response as the assistant turn, rendered by the tokenizer's chat template; otherwise the last user
message, a blank line, and the response. Inputs longer than ``max_length`` tokens are cut at the end
(the rationale says so). Score: a one-label head's logit (its sigmoid with ``sigmoid: true``), or a
two-label head's softmax probability of label 1. Scores are computed in batches of ``batch_size`` with
right padding and the attention mask, so a score does not depend on its batch.

The model and tokenizer are loaded once per process (``_MODELS``, keyed by folder) and reused by
every shard, like the generation engines (``engines.registry``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from prefmill.engines.model_cache import hf_quiet, resolve_model
from prefmill.errors import EngineError
from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.verifiers import point_judgments


class RewardModelSettings(Protocol):
    """What scoring reads of a ``reward_model`` judge's config (judges/reward_model.py
    ``RewardModelJudge``)."""

    model: str
    name: str | None
    batch_size: int
    max_length: int
    sigmoid: bool
    chat_template: bool


_MODELS: dict[str, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def reward_judge_name(config: RewardModelSettings) -> str:
    return config.name or f"reward-model:{Path(config.model).name}"


def load_reward_model(path: str) -> tuple[Any, Any]:
    """(tokenizer, model) of a sequence-classification folder, loaded once per process."""
    folder = str(resolve_model(path))
    with _LOCK:
        if folder in _MODELS:
            return _MODELS[folder]
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            with hf_quiet():
                tokenizer = AutoTokenizer.from_pretrained(folder)
                model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise EngineError(
                f"reward model {path}: cannot load a transformers sequence-classification model from "
                f"{folder}: {exc}; give the folder of such a model (its config.json names a "
                "*ForSequenceClassification architecture)"
            ) from exc
        if model.config.num_labels not in (1, 2):
            raise EngineError(
                f"reward model {path} has {model.config.num_labels} labels; use a 1-label (reward) or "
                "2-label (bad/good) head"
            )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        model.config.pad_token_id = tokenizer.pad_token_id
        model.eval()
        _MODELS[folder] = (tokenizer, model)
        return tokenizer, model


def clear_reward_models() -> None:
    """Forget every loaded reward model (tests)."""
    with _LOCK:
        _MODELS.clear()


def reward_inputs(
    tokenizer: Any, messages: list[dict[str, str]] | None, response: str, use_template: bool
) -> str:
    """The text the reward model reads for one (prompt, response)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in (messages or [])]
    if use_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": response}], tokenize=False
        )
    users = [m["content"] for m in messages if m["role"] == "user"]
    return (users[-1] + "\n\n" if users else "") + response


def reward_scores(config: RewardModelSettings, texts: list[str]) -> tuple[list[float], list[int], list[bool]]:
    """(scores, token counts, truncated flags) of ``texts``, in their order."""
    import torch

    tokenizer, model = load_reward_model(config.model)
    scores: list[float] = []
    lengths: list[int] = []
    truncated: list[bool] = []
    for start in range(0, len(texts), config.batch_size):
        batch = texts[start : start + config.batch_size]
        full = tokenizer(batch, add_special_tokens=False)["input_ids"]
        enc = tokenizer(
            batch,
            add_special_tokens=False,
            padding=True,
            truncation=True,
            max_length=config.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = model(**enc).logits.float()
        if logits.shape[-1] == 1:
            values = logits[:, 0]
            if config.sigmoid:
                values = torch.sigmoid(values)
        else:
            values = torch.softmax(logits, dim=-1)[:, 1]
        scores += [float(v) for v in values]
        lengths += [int(n) for n in enc["attention_mask"].sum(dim=1)]
        truncated += [len(ids) > config.max_length for ids in full]
    return scores, lengths, truncated


def reward_model_judge(config: RewardModelSettings, cands: pa.Table) -> pa.Table:
    """``reward_model`` judgments for every row of ``cands``.

    ``cands`` needs candidate_id, prompt_id, response and messages (the prompt's chat); rows with a
    null response get a ``parse_error`` row.
    """
    if cands.num_rows == 0:
        return empty_table("judgments")
    if "messages" not in cands.column_names:
        raise EngineError("reward model judge: the candidates shard has no 'messages' column (join prompts)")
    tokenizer, _ = load_reward_model(config.model)
    ids = cands.column("candidate_id").to_pylist()
    pids = cands.column("prompt_id").to_pylist()
    responses = cands.column("response").to_pylist()
    messages = cands.column("messages").to_pylist()
    todo = [i for i, r in enumerate(responses) if r is not None]
    texts = [reward_inputs(tokenizer, messages[i], responses[i], config.chat_template) for i in todo]
    values, lengths, cut = reward_scores(config, texts) if texts else ([], [], [])
    scores: list[float | None] = [None] * len(ids)
    rationales: list[str | None] = [None] * len(ids)
    errors: list[str | None] = ["no response to score"] * len(ids)
    for j, i in enumerate(todo):
        scores[i] = values[j]
        rationales[i] = f"reward {values[j]:.4f} over {lengths[j]} tokens" + (
            " (truncated)" if cut[j] else ""
        )
        errors[i] = None
    return point_judgments(
        reward_judge_name(config),
        ids,
        pids,
        scores,
        rationales,
        [None] * len(ids),
        errors,
        kind="reward_model",
    )
