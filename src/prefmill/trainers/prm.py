"""Training a process reward model (PRM): token classification at the step separators.

TRL 1.16 no longer ships a PRM trainer; this is the same recipe on the transformers ``Trainer``. The
token layout (labels at the separators, the separator saved in the model config) is the PRM format of
``prefmill.tasks.evaluation.prm_model``, which the ``prm`` judge scores with.

Heavy imports (torch, transformers, datasets, peft) happen inside the functions.
"""

from __future__ import annotations

from typing import Any

from prefmill.tasks.evaluation.prm_model import IGNORE, LABELS, SEPARATOR_ATTR, encode


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
