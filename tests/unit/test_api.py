"""The Python API's read side: ``prefmill.open`` on a store (the build side runs in integration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tables import build

import prefmill
from prefmill.errors import NotFoundError, RecipeError
from prefmill.storage import Parent, Store


def _store(tmp_path: Path) -> tuple[Store, dict[str, str]]:
    store = Store(str(tmp_path / "root"))
    prompts = store.write_version(
        "ds", "prompts", build("prompts", 3), stage="t", code_version="1", config={}, parents=[]
    )
    cands = store.write_version(
        "ds", "candidates", build("candidates", 6), stage="t", code_version="1", config={},
        parents=[Parent("prompts", prompts.version)],
    )  # fmt: skip
    versions = {"prompts": prompts.version, "candidates": cands.version}
    store.write_ref("ds", "latest", versions)
    return store, versions


def test_open_reads_the_ref(tmp_path: Path) -> None:
    store, versions = _store(tmp_path)
    ds = prefmill.open(store.root)
    assert ds.name == "ds" and ds.versions == versions and ds.tables == ["prompts", "candidates"]
    assert ds.polars("candidates").height == 6 == ds.arrow("candidates").num_rows
    assert ds.polars("prompts", columns=["prompt_id"]).columns == ["prompt_id"]
    counts = ds.sql("SELECT count(*) AS n FROM candidates JOIN prompts USING (prompt_id)")
    assert counts["n"].to_list() == [6]
    assert "candidates@" in repr(ds)
    with pytest.raises(NotFoundError, match=r"dataset 'ds' has no table 'pairs' at ref 'latest'"):
        ds.arrow("pairs")
    with pytest.raises(NotFoundError, match=r"no dataset 'other'"):
        prefmill.open(store.root, dataset="other")


def test_build_refuses_a_bad_stage_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"stop_after='judging': choose one of prompts"):
        prefmill.build({"dataset": "x"}, root=tmp_path, stop_after="judging")
    assert not (tmp_path / "x").exists()
