"""Content-hash identifiers: sha256 of canonical JSON, first 16 hex characters.

The same input gets the same id on every run and machine (DESIGN §2).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_LENGTH = 16

#: The recipe's default ``seed`` (``Recipe.seed``); also ``$seed`` of instantiation SQL run without a recipe.
DEFAULT_SEED = 0


#: One encoder for all canonical JSON (``json.dumps`` with options builds a new encoder per call,
#: which dominates per-row id computation).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no spaces and unicode kept, so equal values give equal text."""
    return _ENCODER.encode(obj)


def content_id(obj: Any) -> str:
    """sha256 of ``canonical_json(obj)``, first 16 hex characters."""
    return hashlib.sha256(_ENCODER.encode(obj).encode("utf-8")).hexdigest()[:ID_LENGTH]


def seed_for(*parts: Any) -> int:
    """A 63-bit integer seed derived from its parts (e.g. recipe seed, prompt_id, sample index)."""
    digest = hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)
