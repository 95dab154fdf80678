"""The synthesis stage's plan: what decides the `candidates` version and what every shard runs with."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.recipe import OfflineSource, Recipe, file_digest
from prefmill.tasks.synthesis.offline import OfflineSpec
from prefmill.tasks.synthesis.run import OfflineImport, ShardPlan


@dataclass(frozen=True)
class SynthesisPlan:
    """The synthesis stage, resolved from the recipe once per build: ``config`` decides the
    candidates version; ``shard`` is what every shard runs with; ``prices`` (openai engines' cost)
    change no rows and stay out of the version."""

    dataset: str
    config: dict[str, Any]
    shard: ShardPlan
    shard_size: int
    prices: dict[str, Any] | None = None

    @property
    def per_prompt(self) -> int:
        """Samples (or calls) per prompt over all policies."""
        return sum(p.k for p in self.shard.policies)


def _source_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents)."""
    if path.is_file():
        return file_digest(path)
    parts = [[str(f.relative_to(path)), file_digest(f)] for f in sorted(path.rglob("*")) if f.is_file()]
    return content_id(parts)


def _offline(recipe: Recipe, i: int, o: OfflineSource) -> tuple[OfflineImport, dict[str, Any]]:
    """One offline source as a shard reads it, and its entry in the version config (options and
    content hash)."""
    path = recipe.resolve_path(o.path)
    if not path.exists():
        raise InputError(
            f"offline responses not found: {path} (recipe field synthesis.offline[{i}].path); fix the path"
        )
    spec = OfflineSpec(**{**{f.name: getattr(o, f.name) for f in fields(OfflineSpec)}, "path": str(path)})
    return OfflineImport(spec, o.data_policy), {
        **o.model_dump(),
        "path": path.name,
        "sha256": _source_digest(path),
    }


def plan_synthesis(recipe: Recipe) -> SynthesisPlan:
    """The recipe's synthesis section resolved once: what every shard runs with and what decides the
    candidates version (every policy's engine, sampling and strategy settings, each offline source's
    options and content hash, the reweighting and diversity settings, the seed and the shard size;
    batch sizes and prices change speed or cost, not rows, and are left out)."""
    s = recipe.synthesis
    policies = tuple(s.resolved_policies())
    offline = [_offline(recipe, i, o) for i, o in enumerate(s.offline)]
    shard = ShardPlan(
        seed=recipe.seed,
        policies=policies,
        offline=tuple(imp for imp, _ in offline),
        policy_engine=s.policy_engine,
        diversity=s.diversity,
        score_batch_size=s.batch_size,
    )
    config = {
        "policies": [p.fingerprint() for p in policies],
        "offline": [entry for _, entry in offline],
        "policy_engine": s.policy_engine,
        "diversity": s.diversity.model_dump() if s.diversity else None,
        "seed": recipe.seed,
        "shard_size": recipe.shard_size,
    }
    prices = {m: p.model_dump() for m, p in recipe.prices.items()} or None
    return SynthesisPlan(recipe.dataset, config, shard, recipe.shard_size, prices)


def synthesis_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the candidates version (``plan_synthesis(recipe).config``)."""
    return plan_synthesis(recipe).config
