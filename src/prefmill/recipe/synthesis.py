"""The `synthesis` section: policies, sampling, offline imports, diversity.

The settings a synthesis shard runs with (``BestOfNConfig``, ``VerbalizedConfig``, ``DiversityConfig``,
``ResolvedPolicy``) are declared next to that work (``prefmill.tasks.synthesis.config``) and
re-exported here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from prefmill.recipe.base import _Section
from prefmill.tasks.synthesis.config import BestOfNConfig, DiversityConfig, ResolvedPolicy, VerbalizedConfig

__all__ = [
    "STRATEGIES", "BestOfNConfig", "DiversityConfig", "OfflineSource", "PolicyConfig", "ResolvedPolicy",
    "SynthesisConfig", "VerbalizedConfig",
]  # fmt: skip


def _check_ladder(name: str, v: float | list[float] | None, low: float, high: float, low_open: bool) -> None:
    if v is None:
        return
    values = v if isinstance(v, list) else [v]
    bad = [t for t in values if (t <= low if low_open else t < low) or t > high]
    if not values or bad:
        bound = f"in ({low:g}, {high:g}]" if low_open else f"between {low:g} and {high:g}"
        raise ValueError(f"{name} must be {bound} (a non-empty list for a ladder)")


def _ladder(v: float | list[float]) -> list[float]:
    return [float(t) for t in v] if isinstance(v, list) else [float(v)]


STRATEGIES = ("sample", "best_of_n", "verbalized")


class PolicyConfig(_Section):
    """One sampling policy of `synthesis.policies`; an unset field takes the `synthesis` section's value."""

    name: str | None = Field(
        default=None,
        description="Name stored in the `policy` column and mixed into the seeds; default: the engine spec. "
        "Must be unique within `policies`.",
    )
    engine: str | None = Field(default=None, description="Engine spec, as `synthesis.engine`.")
    k: int | None = Field(default=None, ge=1, le=256, description="Samples (or calls) per prompt.")
    temperature: float | list[float] | None = Field(default=None, description="Temperature or ladder.")
    top_p: float | list[float] | None = Field(default=None, description="top_p or ladder.")
    max_new_tokens: int | None = Field(default=None, ge=1, le=32768, description="Longest response.")
    batch_size: int | None = Field(default=None, ge=1, le=4096, description="Sequences per engine call.")
    strategy: Literal["sample", "best_of_n", "verbalized"] | None = Field(
        default=None, description="`sample`, `best_of_n` or `verbalized` (see `synthesis.strategy`)."
    )

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, v: float | list[float] | None) -> float | list[float] | None:
        _check_ladder("temperature", v, 0.0, 5.0, False)
        return v

    @field_validator("top_p")
    @classmethod
    def _top_ps(cls, v: float | list[float] | None) -> float | list[float] | None:
        _check_ladder("top_p", v, 0.0, 1.0, True)
        return v


class OfflineSource(_Section):
    """Existing responses imported as candidates (`origin = 'offline'`)."""

    path: str = Field(
        description="A JSONL, CSV or Parquet file, or an HF dataset folder (`save_to_disk`) or a folder of "
        "Parquet files; relative to the recipe's folder."
    )
    format: Literal["jsonl", "csv", "parquet", "hf"] | None = Field(
        default=None, description="File format; by default taken from the suffix (a folder is `hf`)."
    )
    prompt_field: str = Field(default="prompt", description="Column with the prompt text.")
    messages_field: str = Field(
        default="messages", description="Column with the prompt as a chat, instead of text."
    )
    response_field: str = Field(
        default="response",
        description="Column with the response (long format: one row per response) or a list of "
        "responses (wide format).",
    )
    model_field: str = Field(
        default="model", description="Optional column naming the model that wrote the response."
    )
    rating_field: str = Field(
        default="rating",
        description="Optional column with a numeric rating (a list in wide format), kept as `rating`.",
    )
    generator: str | None = Field(
        default=None,
        description="`generator` of the imported rows when there is no model column; default "
        "`offline:<file name>`.",
    )
    data_policy: str | None = Field(
        default=None,
        description="Engine spec of the model that wrote these responses (π_data): when set, each response "
        "is scored under it and the sum log-prob stored in `logprob`.",
    )
    on_unmatched: Literal["error", "skip"] = Field(
        default="error",
        description="A row whose prompt is not in the prompts table: `error` stops the build naming the "
        "file and line; `skip` drops it and counts it in the manifest stat `offline_unmatched`.",
    )


class SynthesisConfig(_Section):
    """Stage 1: response synthesis (candidates y1..yk per prompt)."""

    engine: str = Field(
        default="transformers:smollm2",
        description="Generation engine as `kind:model`; `transformers:smollm2` is the embedded model.",
    )
    k: int = Field(default=4, ge=1, le=256, description="Samples per prompt.")
    temperature: float | list[float] = Field(
        default=0.8,
        description="Sampling temperature, or a ladder: sample i uses entry i mod len(ladder).",
    )
    top_p: float | list[float] = Field(
        default=0.95, description="Nucleus sampling threshold, or a ladder like `temperature`."
    )
    max_new_tokens: int = Field(default=128, ge=1, le=32768, description="Longest response in tokens.")
    batch_size: int = Field(
        default=64, ge=1, le=4096, description="Sequences per engine call (speed only, not the output)."
    )
    strategy: Literal["sample", "best_of_n", "verbalized"] = Field(
        default="sample",
        description="`sample`: k samples per prompt. `best_of_n`: rejection sampling in rounds of k up to "
        "`best_of_n.budget` (see below). `verbalized`: k calls per prompt, each asking for "
        "`verbalized.n` responses with probabilities.",
    )
    best_of_n: BestOfNConfig = Field(default_factory=BestOfNConfig, description="Best-of-n settings.")
    verbalized: VerbalizedConfig = Field(
        default_factory=VerbalizedConfig, description="Verbalized sampling settings."
    )
    policies: list[PolicyConfig] = Field(
        default_factory=list,
        description="Several sampling policies in one build (e.g. two models); each entry overrides the "
        "fields above. Empty: one policy made of the fields above.",
    )
    online: bool = Field(
        default=True, description="Generate with the policies; `false` builds candidates from `offline` only."
    )
    offline: list[OfflineSource] = Field(
        default_factory=list, description="Existing responses to import as candidates."
    )
    policy_engine: str | None = Field(
        default=None,
        description="Target policy π_θ for WPO-style reweighting: every successful candidate is scored "
        "under it and its sum log-prob stored in `policy_logprob`.",
    )
    diversity: DiversityConfig | None = Field(
        default=None,
        description="Mark near-duplicates and report distinct-n / embedding spread per prompt "
        "(all-MiniLM-L6-v2); null: off.",
    )

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, v: float | list[float]) -> float | list[float]:
        _check_ladder("temperatures", v, 0.0, 5.0, False)
        return v

    @field_validator("top_p")
    @classmethod
    def _top_ps(cls, v: float | list[float]) -> float | list[float]:
        _check_ladder("top_p", v, 0.0, 1.0, True)
        return v

    @model_validator(mode="after")
    def _sources(self) -> SynthesisConfig:
        if not self.online and not self.offline:
            raise ValueError("online is false and there are no offline sources: nothing to synthesize")
        names = [p.name or p.engine or self.engine for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policies: name {dupes[0]!r} is used twice; give each policy a distinct `name`")
        return self

    @property
    def temperatures(self) -> list[float]:
        return _ladder(self.temperature)

    @property
    def top_ps(self) -> list[float]:
        return _ladder(self.top_p)

    def resolved_policies(self) -> list[ResolvedPolicy]:
        """The online policies with every field filled in (none when ``online`` is false): an unset
        field of a ``policies`` entry takes the section's value, and a policy carries the settings
        of its strategy (``best_of_n`` / ``verbalized``).

        With no ``policies`` list the one policy has ``name`` None: its seeds and ids are those of a
        single-engine build (``seed_for(seed, prompt_id, i)``)."""
        if not self.online:
            return []
        if not self.policies:
            return [self._resolve(None, PolicyConfig())]
        return [self._resolve(p.name or p.engine or self.engine, p) for p in self.policies]

    def _resolve(self, name: str | None, p: PolicyConfig) -> ResolvedPolicy:
        strategy = p.strategy or self.strategy
        return ResolvedPolicy(
            name=name,
            engine=p.engine or self.engine,
            k=p.k or self.k,
            temperatures=_ladder(p.temperature) if p.temperature is not None else self.temperatures,
            top_ps=_ladder(p.top_p) if p.top_p is not None else self.top_ps,
            max_new_tokens=p.max_new_tokens or self.max_new_tokens,
            batch_size=p.batch_size or self.batch_size,
            strategy=strategy,
            best_of_n=self.best_of_n if strategy == "best_of_n" else None,
            verbalized=self.verbalized if strategy == "verbalized" else None,
        )

    def engine_specs(self) -> list[str]:
        """Every engine spec the section names (policies, data policies, the target policy)."""
        specs = [p.engine for p in self.resolved_policies()]
        specs += [o.data_policy for o in self.offline if o.data_policy]
        if self.policy_engine:
            specs.append(self.policy_engine)
        return specs
