"""Bodies of `prefmill train` and `prefmill iterate` (registered in ``prefmill.cli.train``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prefmill.errors import RecipeError
from prefmill.ui import console, render_records


def _overrides(section: Any, values: dict[str, Any]) -> Any:
    update = {k: v for k, v in values.items() if v is not None}
    if not update:
        return section
    try:
        return section.model_validate({**section.model_dump(), **update})
    except ValidationError as exc:  # one line naming the option
        first = exc.errors()[0]
        raise RecipeError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None


def _quiet(verbose: bool) -> None:
    from prefmill.prefect_logs import mute_prefect_console

    mute_prefect_console()  # Prefect's lines go to its API, and with --verbose through our console
    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def render_train(summary: Any) -> None:
    out = console()
    state = "cached" if summary.cached else f"trained in {summary.seconds:.1f} s"
    out.print(
        f"[bold]{summary.method}[/bold] on {summary.input} ({summary.rows} rows) from {summary.base_model}: "
        f"{state}\n  checkpoints@{summary.checkpoint}  {summary.path}\n"
        f"  steps {summary.steps} · train loss {summary.train_loss:.4f}"
        + (f" · skipped {summary.skipped}" if summary.skipped else "")
    )
    if summary.eval_n:
        render_records(
            [
                {
                    "model": summary.base_model,
                    "phase": "before",
                    "n": summary.eval_n,
                    "accuracy": _pct(summary.accuracy_before),
                },
                {
                    "model": f"checkpoints@{summary.checkpoint}",
                    "phase": "after",
                    "n": summary.eval_n,
                    "accuracy": _pct(summary.accuracy_after),
                },
            ],
            "table",
            title="held-out arithmetic accuracy (train_eval@" + str(summary.eval_version) + ")",
        )


def train_command(
    recipe_path: Path,
    *,
    root: str | None,
    method: str | None,
    table: str | None,
    ref: str | None,
    base_model: str | None,
    max_steps: int | None,
    eval_n: int | None,
    fmt: str,
    verbose: bool,
) -> None:
    from prefmill.recipe import load_recipe
    from prefmill.trainers.config import TrainConfig

    recipe = load_recipe(recipe_path)
    config = _overrides(
        recipe.train or TrainConfig(),
        {"method": method, "table": table, "ref": ref, "base_model": base_model, "max_steps": max_steps},
    )
    if eval_n is not None:
        config = config.model_copy(update={"eval": _overrides(config.eval, {"n": eval_n})})
    _quiet(verbose)
    from prefmill import prefect_env  # noqa: F401
    from prefmill.flows.train import run_train

    console(stderr=True).print(
        f"[dim]training {config.method} on {recipe.dataset} (starting Prefect)...[/dim]"
    )
    from prefmill.prefect_logs import route_prefect_logs

    with route_prefect_logs(verbose, console(stderr=True)):
        summary = run_train(config, recipe.storage_root(root), recipe.dataset)
    if fmt == "json":
        print(json.dumps(asdict(summary), indent=1, default=str))
    else:
        render_train(summary)


def iterate_command(
    recipe_path: Path,
    *,
    root: str | None,
    rounds: int | None,
    mode: str | None,
    fmt: str,
    verbose: bool,
) -> None:
    from prefmill.recipe import load_recipe
    from prefmill.trainers.config import IterateConfig, TrainConfig

    recipe = load_recipe(recipe_path)
    it = _overrides(recipe.iterate or IterateConfig(), {"rounds": rounds, "mode": mode})
    _quiet(verbose)
    from prefmill import prefect_env  # noqa: F401
    from prefmill.flows.iterate import run_iterate

    console(stderr=True).print(
        f"[dim]iterating {it.rounds} round(s) of {it.mode} on {recipe.dataset}...[/dim]"
    )
    from prefmill.prefect_logs import route_prefect_logs

    with route_prefect_logs(verbose, console(stderr=True)):
        summary = run_iterate(recipe, root, train=recipe.train or TrainConfig(), it=it)
    if fmt == "json":
        print(json.dumps(asdict(summary), indent=1, default=str))
        return
    records = [
        {
            "round": r.round,
            "ref": r.ref,
            "policy": r.policy if len(r.policy) <= 40 else "…" + r.policy[-39:],
            "pairs": f"pairs@{r.pairs} ({r.pairs_rows})",
            "checkpoint": f"checkpoints@{r.train.checkpoint}",
            "loss": round(r.train.train_loss, 4),
            "acc before": _pct(r.train.accuracy_before),
            "acc after": _pct(r.train.accuracy_after),
        }
        for r in summary.rounds
    ]
    render_records(records, "table", title=f"{summary.dataset}: {it.mode}, {summary.seconds:.0f} s")
