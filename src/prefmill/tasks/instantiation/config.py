"""The recipe's `instantiation` section (outputs, SQL parameters, selection filters) and the choices
of `evaluation.aggregation`: what the instantiation SQL reads, declared next to it (``params`` takes
the SQL parameters' defaults and checks from here); the recipe imports them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from prefmill.section import _Section
from prefmill.storage.tables import OUTPUTS

#: The recipe's choice of instantiation outputs, built from the table registry.
Output: Any = Literal[OUTPUTS]  # type: ignore[valid-type]

#: How scores.sql combines the judges of a candidate (the recipe's `evaluation.aggregation`).
Aggregation = Literal["mean", "median", "vote"]


class SelectionConfig(_Section):
    """Selection filters over pairs (prefmill/sql/selection.sql; `min_margin` is the explicit margin).
    Every filter that removes rows reports how many and why in the pairs version's manifest
    (`stats.removed`). A field left null switches its filter off."""

    min_implicit_margin: float | None = Field(
        default=None,
        description="Implicit margin: keep pairs whose policy log-prob gap (per token, chosen minus "
        "rejected) is at least this; with `min_margin` both are required (BeeS). Pairs without "
        "log-probs are dropped while it is set ($min_implicit_margin).",
    )
    min_spread: float | None = Field(
        default=None, ge=0, description="Ensemble spread: keep items whose judge spread is >= this."
    )
    max_spread: float | None = Field(
        default=None, ge=0, description="Ensemble spread: keep items whose judge spread is <= this."
    )
    drop_swap_inconsistent: bool = Field(
        default=True,
        description="Drop pairs a pair-wise judge preferred differently when the two responses swapped "
        "places ($drop_swap_inconsistent).",
    )
    min_entropy: float | None = Field(
        default=None, ge=0, le=1, description="Judge entropy band (bits, 0..1): lower bound."
    )
    max_entropy: float | None = Field(
        default=None, ge=0, le=1, description="Judge entropy band (bits, 0..1): upper bound."
    )


class InstantiationConfig(_Section):
    """Stage 3: preference instantiation (DuckDB SQL turns judgments into training signal)."""

    outputs: list[Output] = Field(
        default_factory=lambda: list(OUTPUTS), min_length=1, description="Tables to build."
    )
    min_margin: float = Field(default=0.0, ge=0, description="Pairs: smallest score gap kept ($min_margin).")
    tau: float = Field(default=1.0, gt=0, description="Pairs: soft_label = sigmoid(margin / tau) ($tau).")
    label_threshold: float = Field(
        default=0.5, description="Points: label = reward >= threshold, for KTO ($label_threshold)."
    )
    sql: dict[Output | Literal["selection"], str] = Field(
        default_factory=dict,
        description="Replace a built-in SQL file: output (or `selection`) -> path of your .sql "
        "(relative to the recipe).",
    )
    pair_strategies: list[
        Literal["best_vs_worst", "all_pairs", "best_vs_random", "pareto", "diverse", "step_dpo"]
    ] = Field(
        default_factory=lambda: ["best_vs_worst"],
        min_length=1,
        description="Pairs: how pairs are made ($strategies): `best_vs_worst`, `all_pairs` (every "
        "ordered pair with a score gap), `best_vs_random` (seeded by the recipe seed), `pareto` "
        "(no worse on every criterion, better on one), `diverse` (DivPO: the most distinct good "
        "response chosen, by all-MiniLM-L6-v2 embeddings), `step_dpo` (Step-DPO: two responses that "
        "share their first k steps, all labelled correct, chosen = prefix + a correct step k+1, "
        "rejected = prefix + a wrong one; needs `steps` and step-level judges).",
    )
    weight_clip: float = Field(
        default=5.0,
        ge=1,
        description="Pairs: WPO-style weights are clipped to [1/weight_clip, weight_clip] ($weight_clip).",
    )
    diversity_quantile: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Pairs, `diverse`: candidates scoring >= this quantile of their group count as good "
        "($diversity_quantile).",
    )
    label_rule: Literal["threshold", "quantile"] = Field(
        default="threshold",
        description="Points: KTO label by `threshold` (reward >= label_threshold) or `quantile` (top "
        "label_quantile of each prompt desirable, bottom one undesirable, the middle left out).",
    )
    label_quantile: float = Field(
        default=0.25, gt=0, le=0.5, description="Points: the quantile of `label_rule: quantile`."
    )
    criterion_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weighted scalarisation: {criterion: weight}; candidates scored on every listed "
        "criterion get an extra criterion `weighted` with score = sum(weight * score).",
    )
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig, description="Selection filters over pairs (and spread on points)."
    )
    memory_limit: str | None = Field(
        default=None,
        pattern=r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*$",
        description="Memory limit of each output's DuckDB query, a size such as `4GB` or `512MiB`; past "
        "it sorts, joins and the rows pairs' selection reads spill to `<root>/<dataset>/_scratch`, and "
        "the output streams to its file in batches, so memory stays flat in the dataset's size. "
        "Default: a quarter of the machine's memory. Not part of any version id.",
    )
