"""A build whose engine URL carries credentials (``http://user:key@host/v1``) against a loopback
OpenAI-compatible server: the key reaches the server and appears nowhere in the root or in Prefect's
database (flow-run parameters, states, logs, events); an inline ``api_key=`` is refused before Prefect
starts and is not stored either."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from clienv import PREFMILL, cli_env
from fault_server import FaultServer

pytestmark = pytest.mark.slow

KEY = "sk-userinfo-7c1d5e"
INLINE = "sk-inline-42ab9f"


def _recipe(engine: str) -> str:
    return (
        "dataset: sec\n"
        "prompts:\n  sources:\n    - kind: file\n      path: prompts.jsonl\n"
        f'synthesis:\n  engine: "{engine}"\n  k: 1\n  max_new_tokens: 8\n'
    )


def _build(tmp_path: Path, recipe: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "r.yaml").write_text(recipe)
    return subprocess.run(
        [
            *PREFMILL,
            "build",
            str(tmp_path / "r.yaml"),
            "--root",
            str(tmp_path / "data"),
            "--stop-after",
            "synthesis",
        ],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_url_credentials_reach_the_server_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "ok:one"}\n{"prompt": "ok:two"}\n')
    with FaultServer() as server:
        url = server.url.replace("http://", f"http://alice:{KEY}@")
        refused = _build(tmp_path, _recipe(f"openai:m@{server.url}?max_retries=0&api_key={INLINE}"))
        assert refused.returncode == 1 and "api_key holds a secret" in refused.stderr
        assert INLINE not in refused.stderr + refused.stdout
        built = _build(tmp_path, _recipe(f"openai:m@{url}?max_retries=0"))
        assert built.returncode == 0, built.stderr[-2000:]
        auth = {v for h in server.headers for k, v in h.items() if k.lower() == "authorization"}
    assert auth == {"Basic " + base64.b64encode(f"alice:{KEY}".encode()).decode()}
    assert KEY not in built.stdout + built.stderr
    db = list((tmp_path / "prefect-home").rglob("*.db"))
    assert db and (tmp_path / "data" / "sec").is_dir()  # Prefect's database and the root were written
    for secret in (KEY, INLINE):
        assert _files_holding(tmp_path / "data", secret) == []
        assert _files_holding(tmp_path / "prefect-home", secret) == []
