"""The ``prm`` judge's work: a trained process reward model scores each step of each response.

Input layout and scoring are ``prefmill.tasks.evaluation.prm_model``'s (the ones the model was
trained with): the prompt's last user message, then each step, each followed by the separator saved
in the model's config; a step's score is P(correct) at the last token of its separator. The model is
loaded once per process (keyed by folder).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prefmill.errors import RecipeError
from prefmill.tasks.evaluation.rollouts import step_judgment_id
from prefmill.tasks.evaluation.verifiers import point_judgment_id
from prefmill.tasks.steps.config import StepsConfig

if TYPE_CHECKING:
    import pyarrow as pa


class PRMSettings(Protocol):
    """What scoring reads of a ``prm`` judge's config (judges/prm.py ``PRMJudge``)."""

    model: str
    aggregate: str
    max_length: int
    segmenter: StepsConfig | None

    @property
    def judge_name(self) -> str: ...


_MODELS: dict[str, tuple[Any, Any, str]] = {}
_LOCK = threading.Lock()


def check_prm_folder(path: str) -> Path:
    """The folder of a two-label token-classification model; else a ``RecipeError`` naming the field."""
    folder = Path(path).expanduser()
    what = "is not a folder" if not folder.is_dir() else "has no config.json"
    config_file = folder / "config.json"
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError:
            config = {}
        archs = config.get("architectures") or []
        labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
        if any(str(a).endswith("ForTokenClassification") for a in archs) and labels == 2:
            return folder
        what = f"holds a {', '.join(archs) or 'model of no stated architecture'} with {labels} labels"
    raise RecipeError(
        f"evaluation.judges (prm).model: {path} {what}, not a two-label token-classification model; "
        "give a folder that `prefmill train --method prm` saved"
    )


def model_digest(path: str) -> str:
    """sha256 of the folder's config.json and its files' names and sizes (what the verdicts rest on)."""
    folder = check_prm_folder(path)
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for f in sorted(folder.iterdir()):
        if f.is_file():
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def _load(path: str) -> tuple[Any, Any, str]:
    from prefmill.engines.model_cache import hf_quiet
    from prefmill.tasks.evaluation.prm_model import load_prm

    folder = str(check_prm_folder(path).resolve())
    with _LOCK:
        if folder not in _MODELS:
            with hf_quiet():
                _MODELS[folder] = load_prm(folder)
        return _MODELS[folder]


def _prompt(messages: list[dict[str, str]] | None) -> str:
    users = [m["content"] for m in messages or [] if m["role"] == "user"]
    return users[-1] if users else ""


def _aggregate(scores: list[float], rule: str) -> float:
    if rule == "min":
        return min(scores)
    if rule == "mean":
        return sum(scores) / len(scores)
    return scores[-1]


def prm_judge(config: PRMSettings, cands: pa.Table) -> pa.Table:
    """One ``step`` row per step scored (P(correct)) and one ``outcome`` row per response (the
    ``aggregate`` of its step scores, unless ``none``)."""
    import pyarrow as pa

    from prefmill.storage.schemas import conform, empty_table
    from prefmill.tasks.evaluation.prm_model import score_steps
    from prefmill.tasks.steps.segment import checked_steps

    if config.segmenter is None:
        raise RecipeError(
            "evaluation.judges (prm): step scores need steps; add a `steps` section to the recipe "
            "(e.g. `steps: {segmenter: lines}`) or set the judge's `segmenter`"
        )
    model, tokenizer, separator = _load(config.model)
    schema = empty_table("judgments").schema
    base = {**dict.fromkeys(schema.names), "judge": config.judge_name, "kind": "reward_model"}
    base |= {"mode": "point", "criterion": "overall"}
    rows: list[dict[str, Any]] = []
    cols = [c for c in ("candidate_id", "prompt_id", "response", "messages") if c in cands.column_names]
    for r in cands.select(cols).to_pylist():
        if r.get("response") is None:
            continue
        steps = checked_steps(r["candidate_id"], r["response"], config.segmenter)
        if not steps:
            continue
        texts = [s.text for s in steps]
        scores = score_steps(
            model, tokenizer, _prompt(r.get("messages")), texts, separator, config.max_length
        )
        cid, pid = r["candidate_id"], r["prompt_id"]
        for s, score in zip(steps, scores, strict=True):
            rows.append(
                {
                    **base,
                    "judgment_id": step_judgment_id(config.judge_name, cid, s.index),
                    "prompt_id": pid,
                    "candidate_id": cid,
                    "granularity": "step",
                    "unit_index": s.index,
                    "score": score,
                    "parse_error": None if score is not None else f"step past max_length {config.max_length}",
                }
            )
        usable = [x for x in scores if x is not None]
        if config.aggregate != "none" and usable:
            rows.append(
                {
                    **base,
                    "judgment_id": point_judgment_id(config.judge_name, cid),
                    "prompt_id": pid,
                    "candidate_id": cid,
                    "granularity": "outcome",
                    "score": _aggregate(usable, config.aggregate),
                    "rationale": f"{config.aggregate} of {len(usable)} step scores of the PRM",
                }
            )
    if not rows:
        return schema.empty_table()
    return conform("judgments", pa.Table.from_pylist(rows, schema=schema))
