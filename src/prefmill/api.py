"""The Python API, for notebooks and scripts: build a recipe, open a dataset's tables.

```python
import prefmill

summary = prefmill.build("quickstart.yaml", root="data")    # a Recipe, a path, YAML text or a dict
summary.versions                                           # {"prompts": "3f1c…", "pairs": "…", …}
ds = prefmill.open("data")                                 # the only dataset there, at ref "latest"
ds.polars("pairs").head()
ds.sql("SELECT criterion, count(*) FROM pairs GROUP BY 1")
```

A build from Python is quiet: Prefect's log lines stay out of the notebook (they still reach the Prefect
API, so its UI shows them) unless ``quiet=False`` (``prefmill.prefect_logs``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefmill.errors import RecipeError
from prefmill.storage import DEFAULT_REF, Manifest, Store

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from prefmill.flows import BuildSummary
    from prefmill.recipe import Recipe

__all__ = ["Dataset", "build", "open"]


def _as_recipe(recipe: Recipe | str | os.PathLike[str] | Mapping[str, Any]) -> Recipe:
    from prefmill.recipe import Recipe, load_recipe, parse_recipe

    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        import yaml

        return parse_recipe(yaml.safe_dump(dict(recipe), sort_keys=False), name="<dict>")
    if isinstance(recipe, os.PathLike) or "\n" not in str(recipe):
        path = Path(recipe)
        if not path.exists() and isinstance(recipe, str) and ":" in recipe:
            return parse_recipe(recipe, name="<text>")
        return load_recipe(path)
    return parse_recipe(str(recipe), name="<text>")


def build(
    recipe: Recipe | str | os.PathLike[str] | Mapping[str, Any],
    root: str | os.PathLike[str] | None = None,
    *,
    stop_after: str | None = None,
    ref: str = DEFAULT_REF,
    retry_errors: bool | None = None,
    task_runner: str | None = None,
    workers: int | None = None,
    runner_address: str | None = None,
    quiet: bool = True,
) -> BuildSummary:
    """Build ``recipe`` (a ``Recipe``, a recipe file, YAML text or a dict) into ``root`` (default: the
    recipe's root, $PREFMILL_HOME, ./prefmill-data), exactly as ``prefmill build`` does; the summary's
    ``versions`` are the built versions (also moved to ``ref``). Raises ``PrefmillError`` subclasses
    whose message says what to fix."""
    from prefmill.recipe import STAGES

    if stop_after is not None and stop_after not in STAGES:
        raise RecipeError(f"stop_after={stop_after!r}: choose one of {', '.join(STAGES)}")
    parsed = _as_recipe(recipe)
    from prefmill.flows import run_build
    from prefmill.prefect_logs import route_prefect_logs

    with route_prefect_logs(verbose=not quiet):
        return run_build(
            parsed,
            None if root is None else str(root),
            stop_after=stop_after,
            ref=ref,
            retry_errors=retry_errors,
            task_runner=task_runner,
            workers=workers,
            runner_address=runner_address,
        )


@dataclass
class Dataset:
    """The tables of one dataset at a ref (or at the versions given), read-only."""

    store: Store
    name: str
    ref: str
    manifests: dict[str, Manifest]

    @property
    def tables(self) -> list[str]:
        return list(self.manifests)

    @property
    def versions(self) -> dict[str, str]:
        return {t: m.version for t, m in self.manifests.items()}

    def manifest(self, table: str) -> Manifest:
        try:
            return self.manifests[table]
        except KeyError:
            from prefmill.errors import NotFoundError

            raise NotFoundError(
                f"dataset '{self.name}' has no table '{table}' at ref '{self.ref}' "
                f"(tables: {', '.join(self.manifests) or 'none'})"
            ) from None

    def arrow(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """The table as Arrow."""
        return self.store.read_arrow(self.manifest(table), columns)

    def polars(self, table: str, columns: list[str] | None = None) -> pl.DataFrame:
        """The table as a Polars DataFrame."""
        import polars as pl

        frame = pl.from_arrow(self.arrow(table, columns))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def sql(self, query: str) -> pl.DataFrame:
        """One DuckDB query over the tables (each bound as a view under its name), as Polars."""
        import polars as pl

        from prefmill.storage.duck import session, to_arrow

        con = session(self.store, self.name, versions=self.manifests)
        try:
            frame = pl.from_arrow(to_arrow(con.sql(query)))
        finally:
            con.close()
        assert isinstance(frame, pl.DataFrame)
        return frame

    def __repr__(self) -> str:
        parts = ", ".join(f"{t}@{m.version[:8]} ({m.rows:,} rows)" for t, m in self.manifests.items())
        return f"Dataset({self.name!r} at {self.ref!r} in {self.store.root}: {parts})"


def open(
    root: str | os.PathLike[str] | None = None, dataset: str | None = None, ref: str = DEFAULT_REF
) -> Dataset:
    """The dataset under ``root`` (default $PREFMILL_HOME or ./prefmill-data; the only dataset there
    unless ``dataset`` names one) at ``ref``."""
    from prefmill.commands import pick_dataset

    store = Store(None if root is None else str(root))
    name = pick_dataset(store, dataset)
    r = store.read_ref(name, ref)
    from prefmill.storage.tables import order_key

    manifests = {t: store.manifest(name, t, r.tables[t]) for t in sorted(r.tables, key=order_key)}
    return Dataset(store, name, ref, manifests)
