"""`prefmill serve RECIPE --cron`: against a real `prefect server start` on loopback (own
PREFECT_HOME and port), the command registers a deployment with a cron schedule, the server's
scheduler fires it, the serving process runs the build, and the dataset appears in the store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prefmill.storage import Store

pytestmark = pytest.mark.slow

RECIPE = """\
dataset: nightly
root: data
prompts:
  sources:
    - kind: arithmetic
      n: 2
synthesis:
  k: 1
  max_new_tokens: 4
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, api: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",  # default 60: schedule runs sooner
        PREFECT_RUNNER_POLL_FREQUENCY="2",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH", "")]),
    )
    if api:
        env["PREFECT_API_URL"] = api
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
        ],
        env=_env(home, None),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 300  # ~10 s on an idle machine; minutes on a loaded one
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (home / "server.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not start: " + (home / "server.log").read_text()[-2000:])
        yield api, home / "server.log"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_serve_without_a_server_says_so(tmp_path: Path) -> None:
    # in a clean process: this session may hold a temporary Prefect API of its own
    (tmp_path / "r.yaml").write_text(RECIPE)
    env = _env(tmp_path / "home", None)

    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "prefmill", "serve", str(tmp_path / "r.yaml"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    done = serve("--cron", "* * * * *")
    assert (
        done.returncode == 1 and "need a Prefect server" in done.stderr and "PREFECT_API_URL" in done.stderr
    )
    done = serve("--cron", "every minute")
    assert done.returncode == 1 and "is not a cron expression" in done.stderr
    assert not (tmp_path / "data").exists()


def _deployment_runs(api: str, name: str) -> tuple[dict | None, list[dict]]:
    with httpx.Client(base_url=api, timeout=30) as client:
        deployments = client.post("/deployments/filter", json={}).json()
        deployment = next((d for d in deployments if d["name"] == name), None)
        if deployment is None:
            return None, []
        query = {"deployments": {"id": {"any_": [deployment["id"]]}}}
        return deployment, client.post("/flow_runs/filter", json=query).json()


#: Prefect 3.8's scheduler service fails on SQLAlchemy 2.1 and then never creates a scheduled run
BROKEN_SCHEDULER = "Can't evaluate bulk DML statement"


def test_cron_schedule_fires_a_build(tmp_path: Path, prefect_server: tuple[str, Path]) -> None:
    api, server_log = prefect_server
    recipe = tmp_path / "nightly.yaml"
    recipe.write_text(RECIPE)
    env = _env(tmp_path / "client-home", api)
    log = (tmp_path / "serve.log").open("wb")
    serving = subprocess.Popen(
        [sys.executable, "-m", "prefmill", "serve", str(recipe), "--cron", "* * * * *", "--name", "nightly"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deployment = None
        finished = None
        deadline = time.monotonic() + 420  # the cron fires within 60 s; the build takes the rest
        while time.monotonic() < deadline and finished is None:
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert BROKEN_SCHEDULER not in server_log.read_text(), (
                "the Prefect server's scheduler fails on this SQLAlchemy: pip install 'sqlalchemy>=2.0,<2.1'"
            )
            try:
                deployment, runs = _deployment_runs(api, "nightly")
            except httpx.HTTPError:  # a busy server may answer late: ask again
                time.sleep(2)
                continue
            if deployment is not None:
                assert deployment["schedules"][0]["schedule"]["cron"] == "* * * * *"
                states = [r["state_type"] for r in runs]
                assert "FAILED" not in states and "CRASHED" not in states, (
                    tmp_path / "serve.log"
                ).read_text()
                finished = next((r for r in runs if r["state_type"] == "COMPLETED"), None)
            time.sleep(2)
        assert deployment is not None, "no deployment registered"
        assert finished is not None, (
            "no scheduled run completed: " + (tmp_path / "serve.log").read_text()[-3000:]
        )
        assert finished["auto_scheduled"] is True  # started by the schedule, not by hand
    finally:
        serving.terminate()
        try:
            serving.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serving.kill()
            serving.wait(timeout=30)
        log.close()
    store = Store(tmp_path / "data")
    assert store.datasets() == ["nightly"]
    assert set(store.read_ref("nightly").tables) >= {"prompts", "candidates", "judgments", "pairs"}
    assert store.read("nightly", "candidates").num_rows == 2


def test_deployment_from_infra_prefect_yaml_runs_on_a_worker(
    tmp_path: Path, prefect_server: tuple[str, Path]
) -> None:
    """`prefect deploy --prefect-file infra/prefect.yaml` as the infra README says, then one run of it
    on a real process worker: the root comes from the worker's $PREFMILL_HOME at run time, not from
    the deploying machine (where it is unset)."""
    api, _ = prefect_server
    repo = Path(__file__).parents[2]
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE.replace("root: data\n", ""))
    deployer = {k: v for k, v in _env(tmp_path / "deploy-home", api).items() if k != "PREFMILL_HOME"}

    def prefect(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "prefect", "--no-prompt", *args]
        return subprocess.run(cmd, env=env, cwd=repo, capture_output=True, text=True, timeout=timeout)

    done = prefect("work-pool", "create", "prefmill", "--type", "process", env=deployer)
    assert done.returncode == 0 or "already exists" in done.stdout + done.stderr, done.stderr[-2000:]
    done = prefect("deploy", "--prefect-file", "infra/prefect.yaml", "--all", env=deployer)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    deployment, _ = _deployment_runs(api, "quickstart-nightly")
    assert deployment is not None and "root" not in deployment["parameters"]
    done = prefect(
        "deployment", "run", "prefmill-scheduled-build/quickstart-nightly",
        "--param", f"recipe_path={recipe}", env=deployer,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    worker = {**deployer, "PREFMILL_HOME": str(tmp_path / "shared"), "PREFMILL_WORKDIR": str(repo)}
    done = prefect("worker", "start", "--pool", "prefmill", "--run-once", env=worker, timeout=600)
    _, runs = _deployment_runs(api, "quickstart-nightly")
    ran = [r["state_type"] for r in runs if r["state_type"] != "SCHEDULED"]  # the cron's next runs wait
    assert ran == ["COMPLETED"], (done.stdout + done.stderr)[-3000:]
    store = Store(tmp_path / "shared")
    assert store.datasets() == ["nightly"]
    assert store.read("nightly", "candidates").num_rows == 2
