"""``prefmill.build`` / ``prefmill.open`` from Python, as a notebook uses them: same versions as the CLI's
build, no Prefect INFO chatter."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from tinybuild import TinyBuild

import prefmill


def test_build_and_open_from_python(
    tiny_build: TinyBuild, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_build.folder, folder)
    with caplog.at_level(logging.DEBUG):
        summary = prefmill.build(folder / "recipe.yaml", root=folder / "data")
    assert summary.versions == tiny_build.summary.versions
    assert all(t.cached for t in summary.tables)
    chatter = [r for r in caplog.records if r.name.startswith("prefect") and r.levelno < logging.WARNING]
    assert not chatter, [r.getMessage() for r in chatter[:3]]
    ds = prefmill.open(folder / "data")
    assert ds.versions == summary.versions
    rows = {t.table: t.rows for t in tiny_build.summary.tables}
    assert ds.polars("pairs").height == rows["pairs"] > 0
