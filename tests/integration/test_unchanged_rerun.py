"""An unchanged rerun is found before Prefect starts: the fast path resolves the plan, finds every
version published, prints the cached summary and exits; a changed recipe still builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

from clienv import PREFMILL, cli_env
from tinybuild import TinyBuild


def test_fast_path_finds_the_versions_the_build_made(tiny_build: TinyBuild) -> None:
    from prefmill.flows.fastpath import unchanged_build
    from prefmill.recipe import load_recipe

    recipe = load_recipe(tiny_build.folder / "recipe.yaml")
    summary = unchanged_build(recipe, tiny_build.root, ref="fastpath-check")
    assert summary is not None
    built = [(t.table, t.version, t.rows) for t in tiny_build.summary.tables]
    assert [(t.table, t.version, t.rows) for t in summary.tables] == built
    assert all(t.cached for t in summary.tables)
    # the ref points at the same versions, as a build's would
    from prefmill.storage import Store

    ref = Store(tiny_build.root).read_ref(tiny_build.dataset, "fastpath-check")
    assert ref.tables == {t.table: t.version for t in tiny_build.summary.tables}

    # stopping early needs fewer versions: still found
    early = unchanged_build(recipe, tiny_build.root, stop_after="synthesis", ref="fastpath-check")
    assert early is not None and [t.table for t in early.tables] == [
        "prompts_rejected",
        "prompts",
        "candidates",
    ]

    # a changed output parameter: that output's version is missing, so the build has work to do
    changed = recipe.model_copy(
        update={"instantiation": recipe.instantiation.model_copy(update={"label_threshold": 0.123})}
    )
    assert unchanged_build(changed, tiny_build.root, ref="fastpath-check") is None


def test_unchanged_cli_rerun_starts_no_prefect(tiny_build: TinyBuild, tmp_path: Path) -> None:
    """`prefmill build` of the unchanged recipe: the cached summary, exit 0, and Prefect (and torch,
    the Hub client, pandas) never imported: ``-X importtime`` lists every module the process imported."""
    env = cli_env(tmp_path, api_url="http://127.0.0.1:9/api")  # nothing listens there
    recipe = str(tiny_build.folder / "recipe.yaml")
    cmd = [PREFMILL[0], "-X", "importtime", *PREFMILL[1:], "build", recipe, "--root", tiny_build.root]
    proc = subprocess.run([*cmd, "--ref", "rerun"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }
    assert "prefmill.flows.fastpath" in imported
    assert not {"prefect", "torch", "transformers"} & imported
    assert not {"huggingface_hub", "pandas"} & imported  # the Hub client and pandas: ~0.7 s of start-up
    assert "starting Prefect" not in proc.stderr
    assert "unchanged" in proc.stderr
    assert "to do" not in proc.stdout + proc.stderr
    for t in tiny_build.summary.tables:
        assert t.version in proc.stdout
    assert "cached" in proc.stdout and "built" not in proc.stdout
