"""A small real build (embedded model, real Prefect) into an S3 root on a loopback S3-compatible
server: the same tables as the same build on a local disk, nothing but S3 objects written, and a
second run reuses every version."""

from __future__ import annotations

from pathlib import Path

import pytest
from tables_equal import content

from prefmill.engines.registry import loaded_engines
from prefmill.flows import run_build
from prefmill.recipe import parse_recipe
from prefmill.storage import Store
from prefmill.storage.duck import session
from s3server import S3Server, s3_server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

RECIPE = """\
dataset: s3demo
seed: 3
shard_size: 2
prompts:
  sources:
    - kind: arithmetic
      n: 3
      seed: 9
synthesis:
  k: 2
  max_new_tokens: 8
"""


def _served() -> int:
    return sum(getattr(e, "requests_served", 0) for e in loaded_engines().values())


def test_build_into_s3_matches_local_build(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    root = f"s3://{s3_server.new_bucket()}/datasets"
    recipe = parse_recipe(f"{RECIPE}root: {root}\n", base_dir=tmp_path)
    assert recipe.storage_root() == root
    remote = run_build(recipe)
    local = run_build(recipe, str(tmp_path / "local"))
    store, local_store = Store(root), Store(tmp_path / "local")
    for t in remote.tables:
        assert t.version == local.version(t.table)  # content-addressed: the root is not in the id
        if t.table in ("prompts", "candidates", "judgments", "pairs", "points", "lists"):
            rows = content(store, "s3demo", t.table, t.version)
            assert rows == content(local_store, "s3demo", t.table, t.version), t.table
    assert len(content(store, "s3demo", "candidates", remote.version("candidates"))) == 6
    assert [f.rows for f in store.manifest("s3demo", "candidates", remote.version("candidates")).files] == [
        4,
        2,
    ]
    assert store.read_ref("s3demo").tables["pairs"] == remote.version("pairs")
    con = session(store, "s3demo")  # SQL straight over the S3 objects
    assert con.execute("SELECT count(DISTINCT prompt_id) FROM candidates").fetchall() == [(3,)]
    assert not list(Path.cwd().glob("prefmill-data"))  # nothing fell back to the default local root

    served = _served()
    again = run_build(recipe)
    assert all(t.cached for t in again.tables) and _served() == served
