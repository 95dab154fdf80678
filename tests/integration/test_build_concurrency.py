"""Builds that share a root with other processes: `prefmill gc --apply --incomplete` while a real build
runs deletes nothing it uses; two builds of one recipe racing both succeed with the same tables, the
model work done once; and a build whose every request failed fails, moving no ref.

The engine is `openai:` against a loopback server (``fault_server``), so no model is loaded; the builds
are real `prefmill build` processes talking to the session's Prefect API."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from clienv import PREFMILL, cli_env
from fault_server import FaultServer

from prefmill.errors import ErrorBudgetError
from prefmill.flows import run_build
from prefmill.recipe import parse_recipe
from prefmill.storage import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

DS = "conc"
PROMPTS = [f"ok:answer {i}" for i in range(6)]


def _recipe(folder: Path, url: str) -> Path:
    (folder / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    path = folder / "recipe.yaml"
    path.write_text(
        f"""\
dataset: {DS}
seed: 3
shard_size: 2
prompts:
  sources:
    - kind: file
      path: prompts.jsonl
synthesis:
  engine: "openai:m@{url}?max_retries=0&max_concurrency=1"
  k: 2
  max_new_tokens: 8
evaluation:
  judges: [heuristic]
instantiation:
  outputs: [pairs, points]
"""
    )
    return path


def _build(recipe: Path, root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    cmd = [*PREFMILL, "build", str(recipe), "--root", str(root)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _env(tmp_path: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return cli_env(tmp_path, PREFECT_API_URL.value())


def _tables(store: Store) -> dict[str, list[dict]]:
    ref = store.read_ref(DS)
    return {t: store.read(DS, t, v).to_pylist() for t, v in sorted(ref.tables.items())}


def test_gc_during_a_build_deletes_nothing_it_uses(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with FaultServer(service_seconds=0.4) as server:
        recipe = _recipe(tmp_path, server.url)
        proc = _build(recipe, root, _env(tmp_path))
        store = Store(root)
        deadline, swept = time.monotonic() + 240, 0
        # sweep while the candidates version is being written: prompts is published but no ref names
        # it yet, candidates has shards but no manifest
        while time.monotonic() < deadline and proc.poll() is None:
            cand = root / DS / "candidates"
            if cand.exists() and any(cand.glob("*/part-00000.parquet")):
                report = store.gc(DS, apply=True, incomplete=True)
                assert report.unreferenced == [] and report.incomplete == []
                if report.builds == 0:
                    break  # the build is over (its ref is written)
                assert ("prompts", store.versions(DS, "prompts")[0].version) in report.live
                swept += 1
            time.sleep(0.1)
        out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert swept > 0, "the build finished before gc could run during it"
    tables = _tables(store)
    assert len(tables["candidates"]) == 2 * len(PROMPTS)
    assert all(r["error"] is None for r in tables["candidates"])
    # once the build is over, nothing of it stays live, and gc has nothing to delete
    after = store.gc(DS, apply=True, incomplete=True)
    assert (after.live, after.unreferenced, after.incomplete, after.builds) == ([], [], [], 0)
    assert not (root / DS / "_live").exists()


def test_two_builds_of_one_recipe_share_the_work(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with FaultServer(service_seconds=0.05) as server:
        recipe = _recipe(tmp_path, server.url)
        env = _env(tmp_path)
        first = _build(recipe, root, env)
        second = _build(recipe, root, env)
        outs = [p.communicate(timeout=300)[0] for p in (first, second)]
        asked = dict(server.counts)
    assert [first.returncode, second.returncode] == [0, 0], outs
    # each request was made once: the second build waited for the first's work and reused it
    assert asked and set(asked.values()) == {1}, (asked, outs)
    store = Store(root)
    assert [len(store.versions(DS, t)) for t in ("prompts", "candidates", "judgments", "pairs")] == [1] * 4
    assert all("is published" not in o for o in outs)
    # an API engine with no price in the recipe: the cost is unknown, not a local engine's $0
    assert all("local engine" not in o and "cost unknown (no price for m" in o for o in outs)
    assert len(_tables(store)["candidates"]) == 2 * len(PROMPTS)
    # both got the same versions: each summary names every version of the ref
    for version in store.read_ref(DS).tables.values():
        assert all(version in o for o in outs), (version, outs)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_build_whose_every_request_failed_moves_no_ref(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"  # nothing listens: every connection is refused
    recipe = parse_recipe(_recipe(tmp_path, url).read_text(), base_dir=tmp_path)
    root = tmp_path / "data"
    with pytest.raises(ErrorBudgetError) as err:
        run_build(recipe, str(root))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("synthesis: every row of candidates@") and "--retry-errors" in message
    store = Store(root)
    assert store.refs(DS) == {}
    (failed,) = store.versions(DS, "candidates")  # the finished version stays for --retry-errors
    assert failed.totals["errors"] == failed.rows == 2 * len(PROMPTS)
    assert store.versions(DS, "judgments") == []
