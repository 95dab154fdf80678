"""`prefmill annotate` end to end: the CLI's server driven in headless Chromium with real key presses
(sign in, label 5 pairs, the server killed mid-session and restarted, the 5 kept, publish, found in
`judgments`, the outputs rebuilt over them), an XSS attempt rendered inert, a wrong token refused,
two annotators at once; publishing point / rubric scores and its version's parents."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from annotate_data import DATASET, XSS, write_build
from cdp import Page, browser
from starlette.testclient import TestClient
from test_annotate_app import _hidden, _login, _session

from prefmill.annotate.app import create_app
from prefmill.annotate.publish import publish
from prefmill.annotate.server import SessionOptions, prepare
from prefmill.annotate.store import AnnotationStore, annotations_dir
from prefmill.errors import InputError
from prefmill.storage import Store

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": SRC, "NO_COLOR": "1", "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "prefmill", "annotate", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(root: Path, port: int, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefmill", "annotate", "--root", str(root), "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the annotate server exited"
        assert time.monotonic() < deadline, "the annotate server did not start"
        time.sleep(0.2)


def _sign_in(page: Page, url: str, name: str, token: str) -> None:
    page.goto(url)
    page.wait("document.getElementById('signin')")
    page.eval(
        f"document.getElementById('name').value = {json.dumps(name)};"
        f"document.getElementById('token').value = {json.dumps(token)};"
        "document.getElementById('signin').click(); true"
    )


def _progress(page: Page) -> tuple[int, int]:
    text = page.wait("document.getElementById('progress') && document.getElementById('progress').textContent")
    done, total = re.findall(r"\d+", text)
    return int(done), int(total)


def _answer_with_key(page: Page, key: str) -> None:
    before = _progress(page)[0]
    page.press(key)
    progress = "document.getElementById('progress')"
    page.wait(f"{progress} && !{progress}.textContent.startsWith('{before} /')")


def _token(out: str) -> str:
    return re.search(r"token (\S+)", out).group(1)  # type: ignore[union-attr]


def test_annotate_in_chromium(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_build(root, n_prompts=4, k=3)  # 12 candidate pairs
    alice, bob = _token(_cli(root, "--add-annotator", "alice")), _token(_cli(root, "--add-annotator", "bob"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    args = ("--budget", "10", "--per-item", "2")
    server = _serve(root, port, *args)
    log = root / DATASET / "_annotations" / "verdicts.jsonl"
    try:
        with browser() as chrome:
            a = chrome.page()
            _sign_in(a, url, "alice", alice)
            assert _progress(a) == (0, 10)
            # the XSS attempt (in every prompt, and in one response) is text, and ran nothing
            assert XSS in a.eval("document.getElementById('prompt').textContent")
            assert a.eval("typeof window.pwned") == "undefined"
            assert not a.eval("document.title").startswith("pwned")
            assert a.eval("document.querySelectorAll('#prompt script, #prompt img').length") == 0
            for key in ("1", "2", "t", "1", "2"):
                _answer_with_key(a, key)
            assert _progress(a) == (5, 10) and a.eval("document.getElementById('bar').value") == 5
            verdicts = [json.loads(x) for x in log.read_text().splitlines()]
            assert [v["choice"] for v in verdicts] == ["1", "2", "tie", "1", "2"]

            server.send_signal(signal.SIGKILL)  # mid-session: nothing answered may be lost
            server.wait(timeout=30)
            server = _serve(root, port, *args)
            a.goto(url)  # the signed cookie still holds after the restart
            assert _progress(a) == (5, 10)

            wrong = chrome.page()
            _sign_in(wrong, url, "bob", alice)
            wrong.wait("document.getElementById('error')")
            assert "wrong token" in wrong.text() and "Response 1" not in wrong.text()

            b = chrome.page()  # a second annotator, at the same time as alice
            _sign_in(b, url, "bob", bob)
            assert _progress(b) == (0, 10)
            _answer_with_key(b, "1")
            _answer_with_key(a, "2")
            _answer_with_key(b, "t")
            assert _progress(a) == (6, 10) and _progress(b) == (2, 10)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    verdicts = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(v["annotator"] for v in verdicts) == ["alice"] * 6 + ["bob"] * 2
    assert all(v["order"] in ("ab", "ba") and v["seconds"] >= 0 for v in verdicts)

    recipe = tmp_path / "recipe.yaml"  # only its instantiation section is read by --publish --recipe
    recipe.write_text(
        f"dataset: {DATASET}\nprompts:\n  sources:\n    - kind: arithmetic\n      n: 2\n"
        "evaluation:\n  judges: [heuristic]\ninstantiation:\n  outputs: [pairs, points]\n"
    )
    out = _cli(root, "--publish", "--recipe", str(recipe))
    assert "8 human row(s) from 2 annotator(s)" in out and "pairs@" in out and "points@" in out, out
    store = Store(str(root))
    ref = store.read_ref(DATASET, "annotated")  # the outputs were rebuilt over the human verdicts
    assert set(ref.tables) == {"prompts", "candidates", "judgments", "pairs", "points"}
    pairs = store.resolve_version(DATASET, "pairs", None, "annotated")
    assert ("judgments", ref.tables["judgments"]) in {(p.table, p.version) for p in pairs.parents}
    fidelity = subprocess.run(
        [sys.executable, "-m", "prefmill", "report", "fidelity", "annotated", "--root", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, "NO_COLOR": "1", "COLUMNS": "200"},
        timeout=300,
        check=True,
    ).stdout
    assert "inter-annotator agreement" in fidelity and "judges vs the annotators' majority" in fidelity
    judgments = store.read(DATASET, "judgments", ref="annotated").to_pylist()
    human = [r for r in judgments if r["kind"] == "human"]
    assert len(human) == 8 and {r["judge"] for r in human} == {"human:alice", "human:bob"}
    first5 = {(v["candidate_id"], v["other_candidate_id"]) for v in verdicts[:5]}
    assert first5 <= {
        (r["candidate_id"], r["other_candidate_id"]) for r in human if r["judge"] == "human:alice"
    }
    m = store.resolve_version(DATASET, "judgments", None, "annotated")
    latest = store.read_ref(DATASET, "latest").tables
    assert {p.table: p.version for p in m.parents if p.table != "judgments"} == {
        t: latest[t] for t in ("prompts", "candidates")
    }
    assert latest["judgments"] in {p.version for p in m.parents if p.table == "judgments"}


def test_publish_rubric_scores(tmp_path: Path) -> None:
    """Rubric items: one score per criterion, scaled to [0, 1] like LLM judges' scores."""
    store = write_build(
        tmp_path, n_prompts=1, k=2, rubric='{"accuracy": "is it right", "style": "is it clear"}'
    )
    ann = AnnotationStore(annotations_dir(store.root, DATASET))
    token = ann.add_annotator("alice")
    state, items = prepare(store, DATASET, SessionOptions(mode="rubric"))
    assert len(items) == 2 and items[0].criteria == ("accuracy", "style")
    client = TestClient(create_app(state))
    html = _login(client, "alice", token)
    assert "accuracy" in html and "is it right" in html
    bad = client.post("/answer", data=_hidden(html) | {"choice": "score", "score:accuracy": "9"})
    assert bad.status_code == 400 and "from 1 to 5" in bad.text
    client.post(
        "/answer", data=_hidden(html) | {"choice": "score", "score:accuracy": "5", "score:style": "2"}
    )
    done = publish(store, ann.folder, DATASET, "latest")
    rows = [r for r in store.read_arrow(done.manifest).to_pylist() if r["kind"] == "human"]
    assert sorted((r["criterion"], r["score"]) for r in rows) == [("accuracy", 1.0), ("style", 0.25)]


def test_publish_writes_a_judgments_version_with_parents(tmp_path: Path) -> None:
    state, tokens, ann = _session(tmp_path, budget=3, per_item=2)
    store = Store(str(tmp_path))
    with pytest.raises(InputError, match="no verdicts"):
        publish(store, ann.folder, DATASET, "latest")
    for name in ("alice", "bob"):
        client = TestClient(create_app(state))
        html = _login(client, name, tokens[name])
        for _ in range(2):
            html = client.post("/answer", data=_hidden(html) | {"choice": "1", "rationale": "<b>x</b>"}).text
    done = publish(store, ann.folder, DATASET, "latest")
    m = done.manifest
    latest = store.read_ref(DATASET, "latest").tables
    assert m.stage == "annotation" and {(p.table, p.version) for p in m.parents} == {
        (t, latest[t]) for t in ("prompts", "candidates", "judgments")
    }
    table = store.read_arrow(m).to_pylist()
    human = [r for r in table if r["kind"] == "human"]
    base_rows = store.read(DATASET, "judgments").num_rows
    assert len(table) == base_rows + 4 and {r["judge"] for r in human} == {"human:alice", "human:bob"}
    assert all(r["order"] in ("ab", "ba") and json.loads(r["raw"])["seconds"] >= 0 for r in human)
    assert {r["rationale"] for r in human} == {"<b>x</b>"}
    assert m.stats["fidelity"]["human"]["pairs"][0]["n"] >= 1
    assert store.read_ref(DATASET, "annotated").tables["judgments"] == m.version
    again = publish(store, ann.folder, DATASET, "annotated")
    assert again.manifest.version == m.version and again.base.version == latest["judgments"]
