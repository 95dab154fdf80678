"""The synthesis settings a shard runs with (``run.py`` reads them): the best-of-n and verbalized
settings of a policy's strategy, ``ResolvedPolicy`` (an online policy with every field filled in) and
the diversity settings. Declared here, next to their work; the recipe's `synthesis` section embeds
them and resolves its policies into ``ResolvedPolicy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from prefmill.section import _Section


class BestOfNConfig(_Section):
    """Best-of-n / rejection sampling (RS-DPO): sample in rounds of `k` until a verifier accepts."""

    budget: int = Field(
        default=8, ge=1, le=4096, description="Most samples drawn per prompt (all of them are kept)."
    )
    accept: Literal["arithmetic"] = Field(
        default="arithmetic",
        description="Verifier deciding acceptance: `arithmetic` (final number equals the prompt's "
        "reference). Prompts without a reference get one round of `k` samples, `accepted` null.",
    )
    min_accepted: int = Field(
        default=1, ge=1, le=4096, description="Stop sampling a prompt once this many samples are accepted."
    )


class VerbalizedConfig(_Section):
    """Verbalized sampling: one call asks for `n` distinct responses with their probabilities."""

    n: int = Field(default=5, ge=1, le=64, description="Responses asked for in one call.")
    template: str | None = Field(
        default=None,
        description="Instruction appended to the user's last message; `{n}` is replaced by `n`. "
        "Default: the built-in template asking for `<response><text>...</text>"
        "<probability>...</probability></response>` blocks.",
    )


class DiversityConfig(_Section):
    """Near-duplicate marking and per-prompt diversity statistics (mode-collapse check)."""

    near_duplicate_threshold: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Two candidates of one prompt whose embedding cosine is at least this are "
        "near-duplicates: the later one gets `duplicate_of` = the earlier one's candidate_id.",
    )
    low_spread: float = Field(
        default=0.05,
        ge=0,
        le=2,
        description="A prompt whose embedding spread (mean pairwise cosine distance) is below this "
        "counts as collapsed in the manifest stat `low_diversity_prompts`.",
    )


@dataclass(frozen=True, kw_only=True)
class ResolvedPolicy:
    """An online policy with every field filled in (``SynthesisConfig.resolved_policies``): the one
    shape a synthesis shard runs it with and, by ``fingerprint``, what of it enters the candidates
    version. ``best_of_n`` / ``verbalized`` are the settings of its strategy (their defaults when not
    given), None for the other strategies."""

    name: str | None
    engine: str
    k: int
    temperatures: list[float]
    top_ps: list[float]
    max_new_tokens: int
    batch_size: int
    strategy: str = "sample"
    best_of_n: BestOfNConfig | None = None
    verbalized: VerbalizedConfig | None = None

    def __post_init__(self) -> None:
        if self.strategy == "best_of_n" and self.best_of_n is None:
            object.__setattr__(self, "best_of_n", BestOfNConfig())
        if self.strategy == "verbalized" and self.verbalized is None:
            object.__setattr__(self, "verbalized", VerbalizedConfig())

    def fingerprint(self) -> dict[str, Any]:
        """What of the policy decides its rows (the batch size changes speed only)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "engine": self.engine,
            "k": self.k,
            "temperatures": self.temperatures,
            "top_p": self.top_ps,
            "max_new_tokens": self.max_new_tokens,
            "strategy": self.strategy,
        }
        if self.best_of_n is not None:
            entry["best_of_n"] = self.best_of_n.model_dump()
        if self.verbalized is not None:
            entry["verbalized"] = self.verbalized.model_dump()
        return entry

    @property
    def verbalized_n(self) -> int:
        """Responses per call: ``verbalized.n`` for a verbalized policy, else 1 (a call is a sample)."""
        return self.verbalized.n if self.verbalized is not None else 1
