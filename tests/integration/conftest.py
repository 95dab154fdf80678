"""Integration fixtures: one real Prefect API for the session, the embedded model for real, and one
tiny build that every test which only reads a build's tables shares."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from tinybuild import TINY_OPEN_PROMPTS, TINY_RECIPE, TinyBuild


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API and database shared by every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> TinyBuild:
    """One tiny real build for the session (embedded model, real Prefect flows), for the tests that
    only read what it made. A test that builds more into the same root, moves a ref or needs other
    recipe settings builds its own."""
    from prefmill.flows import run_build
    from prefmill.progress import use_reporter
    from prefmill.recipe import load_recipe
    from prefmill.ui import PlainReporter

    folder = tmp_path_factory.mktemp("tiny")
    (folder / "open.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in TINY_OPEN_PROMPTS))
    (folder / "recipe.yaml").write_text(TINY_RECIPE)
    progress = io.StringIO()
    with use_reporter(PlainReporter(progress)):
        summary = run_build(load_recipe(folder / "recipe.yaml"), str(folder / "data"))
    return TinyBuild(folder, summary, progress.getvalue())
