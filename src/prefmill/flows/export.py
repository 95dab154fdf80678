"""The recipe's `export:` section, run at the end of a full build: one export per entry."""

from __future__ import annotations

from typing import Any

from prefmill.exports import ExportResult, default_table, export_table
from prefmill.flows.results import log
from prefmill.recipe import Recipe
from prefmill.storage import Store


def run_recipe_exports(recipe: Recipe, store: Store, versions: dict[str, str]) -> list[ExportResult]:
    """Export the versions a build produced as the recipe's `export:` entries ask (folders replaced)."""
    results = []
    recipe_dump: dict[str, Any] = recipe.model_dump(mode="json", exclude={"base_dir"})
    for i, spec in enumerate(recipe.export):
        table = spec.table or default_table(spec.format)
        if table not in versions:
            from prefmill.errors import ExportError

            raise ExportError(
                f"export[{i}]: the build made no '{table}' table (it made: {', '.join(sorted(versions))})"
            )
        m = store.manifest(recipe.dataset, table, versions[table])
        result = export_table(
            store,
            m,
            fmt=spec.format,
            out=recipe.resolve_path(spec.out),
            to=tuple(spec.to),
            conversational=spec.conversational,
            where=spec.where,
            overwrite=True,
            hub_repo=spec.hub_repo,
            private=spec.private,
            test_size=spec.test_size,
            seed=spec.seed,
            license=spec.license,
            language=spec.language,
            recipe=recipe_dump,
        )
        log().info(
            "export: %s@%s as %s -> %s (%d rows)", table, m.version, spec.format, result.out, result.rows
        )
        results.append(result)
    return results
