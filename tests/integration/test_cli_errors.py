"""Bad input through the real `prefmill` command: one line naming what and where, no traceback,
nothing published."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clienv import PREFMILL, cli_env

from prefmill.storage import Store

pytestmark = pytest.mark.slow

RECIPE = """\
dataset: bad
prompts:
  sources:
    - kind: file
      path: prompts.jsonl
synthesis:
  k: 1
  max_new_tokens: 8
"""


def _build(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PREFMILL, "build", str(tmp_path / "r.yaml"), "--root", str(tmp_path / "data"), *extra],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_malformed_jsonl_line_stops_the_build_and_publishes_nothing(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "ok"}\n{"prompt": "fine"}\n{"prompt": "broken\n')
    result = _build(tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    [line] = _error_lines(result)
    assert "prompts.jsonl line 3: not valid JSON" in line
    data = tmp_path / "data"
    assert not data.exists() or Store(data).datasets() == [] or Store(data).tables("bad") == []


def test_missing_prompt_file_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    result = _build(tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = _error_lines(result)
    assert f"prompt file not found: {tmp_path / 'prompts.jsonl'}" in line
    assert "prompts.sources[0].path" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECIPE)
    result = _build(tmp_path, "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_root_that_is_a_file_fails_before_prefect(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        RECIPE.replace("kind: file\n      path: prompts.jsonl", "kind: arithmetic\n      n: 2")
    )
    (tmp_path / "data").write_text("not a folder")
    result = _build(tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = _error_lines(result)
    assert line == f"error: storage root {tmp_path / 'data'} is a file, not a folder: pass --root a folder"


def test_prefect_api_start_timing_out_is_retried_then_one_line(tmp_path: Path) -> None:
    """A start-up timeout too short for the temporary API (as on a loaded machine): one retry with twice
    the time, then a line saying what to do; no server process is left behind."""
    (tmp_path / "r.yaml").write_text(
        RECIPE.replace("kind: file\n      path: prompts.jsonl", "kind: arithmetic\n      n: 2")
    )
    env = cli_env(tmp_path)
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "1"
    result = subprocess.run(
        [*PREFMILL, "build", str(tmp_path / "r.yaml"), "--root", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = _error_lines(result)
    assert "Prefect's local API did not start (waited 1 s, then 2 s)" in line and "PREFECT_API_URL" in line
    assert not (tmp_path / "data" / "bad").exists()  # nothing built
