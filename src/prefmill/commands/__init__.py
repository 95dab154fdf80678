"""Bodies of CLI commands that are more than a few lines (no Typer here: ``prefmill.cli`` registers
the commands and parses their options)."""

from __future__ import annotations

from prefmill.errors import NotFoundError
from prefmill.storage import Store


def pick_dataset(store: Store, dataset: str | None) -> str:
    """The dataset a command works on: ``dataset`` if given and present, else the only one."""
    names = store.datasets()
    if dataset:
        if dataset not in names:
            raise NotFoundError(
                f"no dataset '{dataset}' under {store.root} (datasets: {', '.join(names) or 'none'})"
            )
        return dataset
    if len(names) == 1:
        return names[0]
    if not names:
        raise NotFoundError(
            f"no datasets under {store.root}; build one with `prefmill build RECIPE` or pass --root"
        )
    raise NotFoundError(f"several datasets under {store.root}: {', '.join(names)}; pass --dataset NAME")
