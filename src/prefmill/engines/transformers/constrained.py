"""Structured output for in-process engines: JSON-schema-constrained decoding with llguidance.

``Constraints`` holds one llguidance matcher per row of a batch. Each decoding step it masks the
tokens a row's schema does not allow at that point (``mask``), then advances the matchers with the
tokens chosen (``advance``). When a row's JSON is complete only end-of-turn is allowed, so the
reply always parses and validates. Rows without a schema are left alone.

The mask is computed by llguidance (a Rust library, no torch.compile and no GPU needed) as a packed
bitmask and unpacked here with numpy, so it costs microseconds per row and step on a CPU.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from prefmill.engines.base import JsonSchema

#: Passed to llguidance for every schema: compact JSON (no free whitespace, which a small model can
#: otherwise emit forever) and no properties beyond the schema's.
_DEFAULTS = {"whitespace_flexible": False}


class SchemaError(ValueError):
    """A ``response_format`` llguidance cannot compile; the message says why."""


class Grammars:
    """llguidance's view of one tokenizer, and the schemas compiled for it (kept per engine)."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        import llguidance
        import llguidance.hf

        self._llg = llguidance
        self.vocab_size = int(vocab_size)
        self.tokenizer = llguidance.hf.from_tokenizer(
            hf_tokenizer, n_vocab=self.vocab_size, eos_token=[int(e) for e in eos_ids]
        )
        self._grammars: dict[str, str] = {}

    def grammar(self, schema: JsonSchema) -> str:
        """The llguidance grammar of ``schema``; ``SchemaError`` when it is not a usable schema."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            llg = self._llg
            try:
                grammar = llg.LLMatcher.grammar_from_json_schema(schema, defaults=_DEFAULTS)
            except Exception as exc:
                raise SchemaError(f"response_format is not a usable JSON schema: {exc}") from exc
            problem = llg.LLMatcher.validate_grammar(grammar, self.tokenizer)  # '' when usable
            if problem:
                raise SchemaError(f"response_format is not a usable JSON schema: {problem}")
            self._grammars[key] = grammar
        return self._grammars[key]

    def constraints(self, schemas: Sequence[JsonSchema | None]) -> Constraints | None:
        """Matchers for a batch whose rows have these schemas; None when no row has one."""
        if all(s is None for s in schemas):
            return None
        matchers = [
            None if s is None else self._llg.LLMatcher(self.tokenizer, self.grammar(s)) for s in schemas
        ]
        return Constraints(matchers, self.vocab_size)


class Constraints:
    """The matchers of one batch (None for an unconstrained row)."""

    def __init__(self, matchers: list[Any], vocab_size: int) -> None:
        import llguidance.torch

        self._fill = llguidance.torch.fill_next_token_bitmask
        self.matchers = matchers
        self.rows = [i for i, m in enumerate(matchers) if m is not None]
        self.vocab_size = vocab_size
        self._bits = llguidance.torch.allocate_token_bitmask(len(self.rows), vocab_size)
        self.errors: dict[int, str] = {}

    def mask(self, logits: torch.Tensor, active: torch.Tensor) -> None:
        """Set to ``-inf`` (in place) the logits of tokens that active constrained rows may not take."""
        live = [
            (j, r)
            for j, r in enumerate(self.rows)
            if bool(active[r]) and r not in self.errors and not self.matchers[r].is_error()
        ]
        if not live:
            return
        for j, r in live:
            self._fill(self.matchers[r], self._bits, j)
        words = self._bits[[j for j, _ in live]].numpy()
        allowed = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, : self.vocab_size]
        width = logits.shape[-1]
        keep = torch.zeros((len(live), width), dtype=torch.bool)
        n = min(width, allowed.shape[1])
        keep[:, :n] = torch.from_numpy(allowed[:, :n].astype(bool))
        rows = torch.tensor([r for _, r in live])
        logits[rows] = logits[rows].masked_fill(~keep, -torch.inf)

    def advance(self, chosen: torch.Tensor, active: torch.Tensor) -> None:
        """Feed each active constrained row the token just chosen for it."""
        for r in self.rows:
            m = self.matchers[r]
            if not bool(active[r]) or r in self.errors or m.is_stopped():
                continue
            if not m.consume_token(int(chosen[r])) or m.is_error():
                self.errors[r] = m.get_error() or "the grammar rejected a token"
