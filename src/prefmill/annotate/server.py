"""Starting an annotation session: the build, its items, the app, and uvicorn on 127.0.0.1 (by
default). Also ``reinstantiate``: the recipe's outputs rebuilt over a published judgments version."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefmill.annotate.app import Annotator, Settings, create_app
from prefmill.annotate.items import Item, Mode, load_build, make_items
from prefmill.annotate.select import Method
from prefmill.annotate.store import AnnotationStore, annotations_dir
from prefmill.errors import InputError
from prefmill.storage import Manifest, Store


@dataclass(frozen=True)
class SessionOptions:
    ref: str = "latest"
    mode: Mode = "pair"
    budget: int | None = None
    select: Method = "uncertainty"
    diversity: float = 0.5
    seed: int = 0
    per_item: int = 1
    show_judges: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(store: Store, dataset: str, options: SessionOptions) -> tuple[Annotator, list[Item]]:
    """The app state of a session over ``options.ref``'s build (items in hand-out order)."""
    if options.per_item < 1:
        raise InputError(f"--per-item {options.per_item}: an item is shown to at least 1 annotator")
    if options.budget is not None and options.budget < 1:
        raise InputError(f"--budget {options.budget}: label at least 1 item (or leave --budget out)")
    build = load_build(store, dataset, options.ref)
    items = make_items(
        build,
        options.mode,
        budget=options.budget,
        select=options.select,
        diversity=options.diversity,
        seed=options.seed,
    )
    folder = annotations_dir(store.root, dataset)
    annotation_store = AnnotationStore(folder)
    if not annotation_store.annotators():
        raise InputError(
            f"no annotators in {folder}; add one with `prefmill annotate --add-annotator NAME` (it prints "
            "the token they sign in with)"
        )
    state = Annotator(build, items, annotation_store, Settings(options.per_item, options.show_judges))
    return state, items


def serve(state: Annotator, host: str, port: int) -> None:
    """Serve the app until interrupted."""
    import uvicorn

    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)


def reinstantiate(recipe_path: Path, root: str, dataset: str, ref: str) -> list[Any]:
    """Rebuild the recipe's outputs (pairs / points / lists) over the versions ``ref`` names and add
    them to ``ref``; returns the outputs' TableResults."""
    from prefmill.flows.instantiation import instantiation_flow
    from prefmill.flows.plans.instantiation import plan_instantiation
    from prefmill.flows.runners import RunnerChoice, runner_session
    from prefmill.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    if recipe.dataset != dataset:
        raise InputError(f"{recipe_path}: the recipe builds dataset '{recipe.dataset}', not '{dataset}'")
    store = Store(root)
    man: dict[str, Manifest] = {
        t: store.resolve_version(dataset, t, None, ref) for t in ("prompts", "candidates", "judgments")
    }
    with runner_session(RunnerChoice(recipe.task_runner, recipe.runner_address, recipe.workers), root):
        results = instantiation_flow(
            plan_instantiation(recipe), root, dataset, man["prompts"], man["candidates"], man["judgments"]
        )
    current = store.read_ref(dataset, ref)
    tables = dict(current.tables) | {r.table: r.version for r in results}
    store.write_ref(dataset, ref, tables, info=current.info)
    return results
