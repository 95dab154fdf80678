"""A process reward model (PRM)'s format: the token layout it is trained on and scored with, and
loading and scoring a trained one (the ``prm`` judge). Training is ``prefmill.trainers.prm``'s.

A row of TRL's stepwise-supervision type (``prompt``, ``completions`` = the steps, ``labels`` = one
bool per step) becomes one token sequence::

    [bos] prompt SEP step_1 SEP step_2 SEP ... step_n SEP

each piece tokenized on its own (so the separator positions are exact), with label -100 on every
token except the last token of the separator after each step, which gets that step's label (1 =
correct, 0 = wrong). The model is ``AutoModelForTokenClassification`` with two labels; a step's score
is P(correct) = softmax(logits at its separator)[1]. The separator is written into the saved model's
config (``prefmill_step_separator``) so the ``prm`` judge scores with the one it was trained with.

Heavy imports (torch, transformers) happen inside the functions.
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
