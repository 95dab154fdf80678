"""The task-runner table: built from one module per kind, light to import, and the one source of
the recipe's `task_runner` choices, the install hints and the pyproject extras they name."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import pytest

from prefmill.errors import RunnerError
from prefmill.recipe import Recipe
from prefmill.task_runners import TASK_RUNNERS, RunnerChoice, task_runner_kinds

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_table_comes_from_the_kind_modules() -> None:
    kinds = task_runner_kinds()
    assert TASK_RUNNERS == tuple(kinds) == ("local", "dask", "ray")
    for name, kind in kinds.items():
        assert kind.name == name and kind.summary
        assert kind.factory is None or kind.factory.__module__ == f"prefmill.task_runners.{name}"
    assert not kinds["local"].distributed and kinds["dask"].distributed and kinds["ray"].distributed
    assert RunnerChoice("ray").distributed and not RunnerChoice().distributed


def test_the_recipe_choices_are_the_table() -> None:
    assert get_args(Recipe.model_fields["task_runner"].annotation) == TASK_RUNNERS


def test_every_extra_named_by_a_kind_is_in_pyproject_and_in_dev() -> None:
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    dev = {req.split(">")[0].split("=")[0].split("[")[0] for req in extras["dev"]}
    for kind in task_runner_kinds().values():
        if kind.module is None:
            assert kind.extra is None and kind.install is None
            continue
        assert kind.extra in extras and f"prefmill[{kind.extra}]" in (kind.install or "")
        packages = {req.split(">")[0].split("=")[0] for req in extras[kind.extra]}
        assert kind.module.replace("_", "-") in packages
        assert packages <= dev, kind.name  # CI installs dev: every runner's packages are tested


def test_importing_the_table_imports_no_prefect_or_cluster_code() -> None:
    code = (
        "import sys; import prefmill.recipe, prefmill.task_runners; "
        "print([m for m in ('prefect', 'prefect_dask', 'prefect_ray', 'ray', 'distributed') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from prefmill.flows.runners import check_choice

    monkeypatch.setitem(sys.modules, "prefect_ray", None)  # import prefect_ray raises ImportError
    with pytest.raises(RunnerError, match=r"needs prefect-ray: pip install 'prefmill\[ray\]'"):
        check_choice(RunnerChoice("ray"), str(tmp_path))
    with pytest.raises(RunnerError, match="unknown: use one of local, dask, ray"):
        check_choice(RunnerChoice("spark"), str(tmp_path))
    check_choice(RunnerChoice("local"), str(tmp_path))


def test_the_user_guide_lists_every_runner_and_its_extra() -> None:
    text = (PYPROJECT.parent / "docs" / "user-guide.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Task runners") : text.index("\n## Scheduled builds")]
    for kind in task_runner_kinds().values():
        assert f"| `{kind.name}`" in section, kind.name
        if kind.extra:
            assert f"extra `{kind.extra}`" in section and f"prefmill[{kind.extra}]" in section, kind.name
