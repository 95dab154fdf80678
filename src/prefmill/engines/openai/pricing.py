"""USD per million tokens for the openai engine (the recipe's ``prices`` table sets them)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """Prices of one model in USD per million tokens; None where the model has no price."""

    input_per_mtok: float | None = None
    output_per_mtok: float | None = None

    def problems(self) -> list[str]:
        """Why these prices are not valid (empty when they are)."""
        out = []
        prices = (("input_per_mtok", self.input_per_mtok), ("output_per_mtok", self.output_per_mtok))
        for name, price in prices:
            if price is not None and not (price >= 0 and math.isfinite(price)):
                out.append(f"{name} must be a price >= 0 in USD per million tokens, got {price}")
        return out

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None or self.output_per_mtok is not None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        """USD for these tokens, or None when the model has no price."""
        if not self.priced:
            return None
        return (
            prompt_tokens * (self.input_per_mtok or 0.0) + completion_tokens * (self.output_per_mtok or 0.0)
        ) / 1e6
