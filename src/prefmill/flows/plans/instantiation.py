"""The instantiation stage's plan: one ``OutputPlan`` per output; only the parameters an output's SQL
uses (and that SQL's text) enter its version."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from prefmill.errors import RecipeError
from prefmill.recipe import Recipe
from prefmill.sql import JUDGMENT_MACROS, read_sql
from prefmill.tasks.instantiation.embeddings import EMBEDDING_MODEL
from prefmill.tasks.instantiation.params import sql_params
from prefmill.tasks.instantiation.run import sql_parameters


def recipe_params(recipe: Recipe) -> dict[str, Any]:
    """Every SQL parameter the recipe sets, by its $name in the SQL files."""
    return sql_params(recipe.instantiation, recipe.seed)


def output_config(recipe: Recipe, output: str) -> tuple[dict[str, Any], str | None]:
    """The version config of one output: its SQL's hash and the parameters that SQL uses (for pairs,
    the selection SQL's too; criterion weights and the embedding model when they change the rows)."""
    custom = recipe.sql_text(output)
    text = custom if custom is not None else read_sql(output)
    scores = read_sql("scores")
    where = recipe.instantiation.sql.get(output, f"{output}.sql")  # type: ignore[call-overload]
    used = sql_parameters(text, where=where) | sql_parameters(scores, where="scores.sql")
    parts = [read_sql("judged_values"), read_sql("score_values"), scores, text]
    parts.insert(0, read_sql(JUDGMENT_MACROS))  # usable_judgments() and swap_pairs(), read by both
    custom_selection = None
    if output == "pairs":
        custom_selection = recipe.sql_text("selection")
        selection = custom_selection if custom_selection is not None else read_sql("selection")
        swhere = recipe.instantiation.sql.get("selection", "selection.sql")
        used |= sql_parameters(selection, where=swhere)
        parts.append(selection)
    params = {k: v for k, v in recipe_params(recipe).items() if k in used}
    if recipe.instantiation.criterion_weights:
        params["criterion_weights"] = dict(sorted(recipe.instantiation.criterion_weights.items()))
    params["aggregation"] = recipe.evaluation.aggregation  # read by scores.sql as a DuckDB variable
    digest = hashlib.sha256("\n-- next --\n".join(parts).encode()).hexdigest()
    config: dict[str, Any] = {
        "output": output,
        "sql_sha256": digest,
        "custom_sql": custom is not None,
        "params": params,
    }
    if custom_selection is not None:
        config["custom_selection_sql"] = True
    if "diverse" in params.get("strategies", []):
        config["embedding_model"] = EMBEDDING_MODEL
    if "step_dpo" in params.get("strategies", []) and recipe.steps is None:
        raise RecipeError(
            "instantiation.pair_strategies: step_dpo pairs need step labels; add a `steps` section "
            "(e.g. `steps: {segmenter: lines}`) and step-level judges (rollout, rollout_search, step_llm)"
        )
    return config, custom


@dataclass(frozen=True)
class OutputPlan:
    """One output of the instantiation stage, resolved once per build: ``config`` decides its version
    (``params`` are the SQL parameters it uses); the SQL texts / files to run (None: built-in)."""

    output: str
    config: dict[str, Any]
    sql_text: str | None
    sql_file: str | None
    selection: tuple[str | None, str | None] = (None, None)
    memory_limit: str | None = None  # DuckDB's memory_limit while the output is made (not in the version)

    @property
    def params(self) -> dict[str, Any]:
        return self.config["params"]


def plan_output(recipe: Recipe, output: str) -> OutputPlan:
    config, custom_sql = output_config(recipe, output)
    selection: tuple[str | None, str | None] = (None, None)
    if output == "pairs":
        selection = (recipe.sql_text("selection"), recipe.instantiation.sql.get("selection"))
    sql_file = recipe.instantiation.sql.get(output)  # type: ignore[call-overload]
    return OutputPlan(output, config, custom_sql, sql_file, selection, recipe.instantiation.memory_limit)


def plan_instantiation(recipe: Recipe) -> tuple[OutputPlan, ...]:
    return tuple(plan_output(recipe, output) for output in recipe.instantiation.outputs)
