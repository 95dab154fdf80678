"""The default fidelity gate in a real build: a pair judge that always answers "A" (an
OpenAI-compatible server on loopback standing in for a paid endpoint) stops `prefmill build` with
exit 1 and one line naming the judge and the figure, before instantiation: no pairs are published
and no ref moves. Offline responses, so no model is loaded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prefmill.cli import run
from prefmill.storage import Store

pytestmark = pytest.mark.slow


class _AlwaysA(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": '{"better": "A"}'},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def always_a() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysA)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


RECIPE = """
dataset: gated
prompts:
  sources: [{kind: file, path: prompts.jsonl}]
synthesis:
  online: false
  offline: [{path: responses.jsonl}]
evaluation:
  judges:
    - {kind: llm, name: always-a, mode: pair, engine: "openai:judge@URL", structured_output: false,
       repair: false}
FIDELITY
instantiation:
  outputs: [pairs]
"""


def _write(tmp_path: Path, url: str, fidelity: str = "") -> Path:
    prompts = [f"Say something about the number {i}." for i in range(12)]
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    responses = [
        {"prompt": p, "response": text}
        for i, p in enumerate(prompts)
        for text in (f"{i} is a number.", f"The number {i} comes after {i - 1} and before {i + 1}.")
    ]
    (tmp_path / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in responses))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("URL", url).replace("FIDELITY", fidelity))
    return recipe


def test_always_a_judge_stops_the_default_build(
    tmp_path: Path, always_a: str, prefect_api: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "data")
    recipe = _write(tmp_path, always_a)
    assert run(["build", str(recipe), "--root", root]) == 1
    # the one error (rich wraps it at the console's width; Prefect's own log of the failed flow goes
    # to stderr too in-process, where the CLI cannot quiet it)
    err = capsys.readouterr().err
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1
    text = " ".join(err[err.index("error:") :].split())
    assert "judge 'always-a' too inconsistent: position consistency 0.000 < " in text
    assert "share of verdicts favouring the first position 1.000 > " in text
    store = Store(root)
    assert "pairs" not in store.tables("gated") and not store.refs("gated")
    [version] = store.versions("gated", "judgments")
    judged = store.read("gated", "judgments", version.version).to_pylist()
    assert len(judged) == 24 and all(j["prefers_first"] > 0.5 for j in judged)

    # the recipe turns the gate off: the same judgments (cached) go on to instantiation, and the
    # empty pairs output says why, in the summary, the manifest and the report
    relaxed = _write(tmp_path, always_a, "  fidelity: {enforce: false}")
    assert run(["build", str(relaxed), "--root", root]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "latest" in Store(root).refs("gated")
    pairs = Store(root).read_ref("gated").tables["pairs"]
    reason = Store(root).manifest("gated", "pairs", pairs).stats["empty_reason"]
    assert reason.startswith("every prompt's candidates score the same")  # always "A": all 0.5
    assert f"pairs: 0 rows -- {reason}" in out
    html = tmp_path / "report.html"
    assert run(["report", "--root", root, "--out", str(html)]) == 0
    assert "<b>pairs</b>: 0 rows -- every prompt" in html.read_text(encoding="utf-8")
