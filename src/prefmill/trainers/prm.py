"""A process reward model (PRM) as token classification at the step separators.

TRL 1.16 no longer ships a PRM trainer; this is the same recipe on the transformers ``Trainer``. A
row of TRL's stepwise-supervision type (``prompt``, ``completions`` = the steps, ``labels`` = one bool
per step) becomes one token sequence::

    [bos] prompt SEP step_1 SEP step_2 SEP ... step_n SEP

each piece tokenized on its own (so the separator positions are exact), with label -100 on every
token except the last token of the separator after each step, which gets that step's label (1 =
correct, 0 = wrong). The model is ``AutoModelForTokenClassification`` with two labels; a step's score
is P(correct) = softmax(logits at its separator)[1]. The separator is written into the saved model's
config (``prefmill_step_separator``) so the ``prm`` judge scores with the one it was trained with.

Heavy imports (torch, transformers, datasets, peft) happen inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE = -100
#: the attribute of the saved model config that holds the step separator
SEPARATOR_ATTR = "prefmill_step_separator"
LABELS = {0: "wrong", 1: "correct"}


@dataclass(frozen=True)
class Encoded:
    """One tokenized stepwise row: token ids, per-token labels, the index of each step's label token."""

    input_ids: list[int]
    labels: list[int]
    positions: list[int]


def encode(
    tokenizer: Any,
    prompt: str,
    steps: list[str],
    labels: list[bool] | None,
    separator: str,
    max_length: int,
    *,
    last_step_only: bool = False,
) -> Encoded:
    """``prompt`` and ``steps`` -> token ids with the step labels at the separators (``labels`` None:
    -1 placeholders, for scoring). Steps cut off by ``max_length`` have no position."""
    sep = tokenizer.encode(separator, add_special_tokens=False)
    if not sep:
        raise ValueError(f"the step separator {separator!r} tokenizes to nothing; pick another")
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids += tokenizer.encode(prompt, add_special_tokens=False) + sep
    out = [IGNORE] * len(ids)
    positions: list[int] = []
    for i, step in enumerate(steps):
        piece = tokenizer.encode(step, add_special_tokens=False) + sep
        label = -1 if labels is None else int(bool(labels[i]))
        if last_step_only and labels is not None and i < len(steps) - 1:
            label = IGNORE
        ids += piece
        out += [IGNORE] * (len(piece) - 1) + [label]
        positions.append(len(ids) - 1)
    ids, out = ids[:max_length], out[:max_length]
    return Encoded(ids, out, [p for p in positions if p < max_length])


def prm_inputs(rows: list[dict[str, Any]], config: Any, model_dir: str, tokenizer: Any) -> dict[str, Any]:
    """The ``Trainer`` arguments of a PRM run: the token-classification model (LoRA-wrapped when the
    recipe asks), the tokenized dataset and the padding collator."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    from prefmill.errors import InputError

    separator = config.step_separator
    encoded = []
    for n, row in enumerate(rows):
        steps, labels = list(row["completions"]), list(row["labels"])
        if len(steps) != len(labels) or not steps:
            raise InputError(f"train: prm row {n} has {len(steps)} steps and {len(labels)} labels")
        e = encode(
            tokenizer, row["prompt"], steps, labels, separator, config.max_length,
            last_step_only=config.train_on_last_step_only,
        )  # fmt: skip
        if any(x != IGNORE for x in e.labels):  # a step label survived max_length
            encoded.append(
                {"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels}
            )
    if not encoded:
        raise InputError(
            f"train: no prm row keeps a labelled step within max_length {config.max_length}; raise it"
        )
    from prefmill.engines.model_cache import hf_quiet

    with hf_quiet():  # no weight-loading bar
        model = AutoModelForTokenClassification.from_pretrained(
            model_dir,
            num_labels=2,
            id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()},
            dtype=torch.float32,
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    setattr(model.config, SEPARATOR_ATTR, separator)
    if config.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lora = config.lora
        head = "score" if hasattr(model, "score") else "classifier"  # trained in full, no adapter
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                target_modules=lora.target_modules, task_type="TOKEN_CLS",
                exclude_modules=[head], modules_to_save=[head],
            ),
        )  # fmt: skip
    return {
        "model": model,
        "train_dataset": Dataset.from_list(encoded),
        "data_collator": DataCollatorForTokenClassification(tokenizer),
    }


def load_prm(path: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, separator) of a PRM folder; ``ValueError`` when it is not one."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    if config.num_labels != 2 or not any(
        a.endswith("ForTokenClassification") for a in config.architectures or []
    ):
        raise ValueError(
            "not a two-label token-classification model (train one with `prefmill train --method prm`)"
        )
    model = AutoModelForTokenClassification.from_pretrained(path)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer, getattr(config, SEPARATOR_ATTR, "\n")


def score_steps(
    model: Any, tokenizer: Any, prompt: str, steps: list[str], separator: str, max_length: int = 4096
) -> list[float | None]:
    """P(correct) of each step (None for a step past ``max_length`` tokens)."""
    import torch

    e = encode(tokenizer, prompt, steps, None, separator, max_length)
    with torch.no_grad():
        logits = model(torch.tensor([e.input_ids])).logits[0]
    probs = torch.softmax(logits.float(), dim=-1)[:, 1]
    found = [float(probs[p]) for p in e.positions]
    return found + [None] * (len(steps) - len(found))
