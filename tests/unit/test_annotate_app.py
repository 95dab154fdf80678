"""The annotation app through Starlette's TestClient: tokens, CSRF, escaping, the durable verdict log,
per-item limits, randomised positions (publishing: tests/integration/test_annotate.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from annotate_data import DATASET, XSS, write_build
from starlette.testclient import TestClient

from prefmill.annotate.app import Annotator, Settings, create_app
from prefmill.annotate.items import Build, load_build, make_items, order_for
from prefmill.annotate.server import SessionOptions, prepare
from prefmill.annotate.store import AnnotationStore, annotations_dir


def _hidden(html: str) -> dict[str, str]:
    return {m[1]: m[2] for m in re.finditer(r"type='hidden' name='([\w:]+)' value='([^']*)'", html)}


def _session(tmp_path: Path, **options: object) -> tuple[Annotator, dict[str, str], AnnotationStore]:
    """A session over a build written to ``tmp_path`` (annotations under the dataset, as served)."""
    store = write_build(tmp_path)
    folder = annotations_dir(store.root, DATASET)
    ann = AnnotationStore(folder)
    tokens = {n: ann.add_annotator(n) for n in ("alice", "bob")}
    state, _ = prepare(store, DATASET, SessionOptions(**options))  # type: ignore[arg-type]
    return state, tokens, ann


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """One build for the tests that only read it (each gets its own annotations folder)."""
    return load_build(write_build(tmp_path_factory.mktemp("build")), DATASET, "latest")


def _fresh(build: Build, tmp_path: Path, **options: object) -> tuple[Annotator, dict[str, str]]:
    o = SessionOptions(**options)  # type: ignore[arg-type]
    items = make_items(build, o.mode, budget=o.budget, select=o.select, seed=o.seed)
    ann = AnnotationStore(tmp_path / "_annotations")
    tokens = {n: ann.add_annotator(n) for n in ("alice", "bob")}
    return Annotator(build, items, ann, Settings(o.per_item, o.show_judges)), tokens


def _login(client: TestClient, name: str, token: str) -> str:
    page = client.get("/")
    return client.post("/login", data={**_hidden(page.text), "name": name, "token": token}).text


def test_wrong_token_and_forged_forms_are_refused(shared: Build, tmp_path: Path) -> None:
    state, tokens = _fresh(shared, tmp_path)
    client = TestClient(create_app(state))
    page = client.get("/")
    assert "Sign in" in page.text and "script-src 'nonce-" in page.headers["content-security-policy"]
    bad = client.post("/login", data={**_hidden(page.text), "name": "alice", "token": tokens["bob"]})
    assert bad.status_code == 403 and "wrong token" in bad.text and "Response 1" not in bad.text
    no_csrf = client.post("/login", data={"name": "alice", "token": tokens["alice"], "csrf": "x"})
    assert no_csrf.status_code == 403
    assert client.post("/answer", data={"choice": "1"}).status_code == 401  # not signed in
    item = _login(client, "alice", tokens["alice"])
    assert "Response 1" in item
    form = _hidden(item) | {"choice": "1"}
    assert client.post("/answer", data=form | {"csrf": "forged"}).status_code == 403
    assert state.verdicts == []
    forged_cookie = TestClient(create_app(state), cookies={"pm_session": "alice:1:" + "0" * 32})
    assert forged_cookie.post("/answer", data=form).status_code == 401
    assert client.post("/answer", data=form, follow_redirects=False).status_code == 303
    assert len(state.verdicts) == 1


def test_responses_are_escaped(shared: Build, tmp_path: Path) -> None:
    state, tokens = _fresh(shared, tmp_path, select="random", seed=0)
    state.items.sort(key=lambda i: XSS not in {state.build.responses[c] for c in i.candidates})
    client = TestClient(create_app(state))
    html = _login(client, "alice", tokens["alice"])
    assert (
        html.count("&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;") == 2
    )  # prompt, response
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "Question 0 &lt;b&gt;bold?&lt;/b&gt;" in html and "ref 0" in html


def test_verdicts_are_durable_and_positions_recorded(tmp_path: Path) -> None:
    state, tokens, ann = _session(tmp_path, budget=4)
    client = TestClient(create_app(state))
    html = _login(client, "alice", tokens["alice"])
    for choice in ("1", "2", "tie", "skip"):
        html = client.post("/answer", data=_hidden(html) | {"choice": choice, "rationale": "why"}).text
    assert "Nothing left to label" in html and "4 / 4" in html
    log = [json.loads(x) for x in ann.verdicts_path.read_text().splitlines()]
    assert [v["choice"] for v in log] == ["1", "2", "tie", "skip"]
    for v in log:
        item = state.by_id[v["item_id"]]
        assert v["order"] == order_for("alice", item) and v["seconds"] >= 0
        if v["choice"] in ("1", "2"):
            first_is_a = v["order"] == "ab"
            assert v["prefers_first"] == (1.0 if (v["choice"] == "1") == first_is_a else 0.0)
    assert log[2]["prefers_first"] == 0.5 and log[3]["prefers_first"] is None
    with ann.verdicts_path.open("a") as f:
        f.write('{"annotator": "alice", "item_')  # a torn last line (killed mid-write) is ignored
    store = _store(tmp_path)
    assert ann.folder.parent.name == DATASET and store.tables(DATASET) == [
        "candidates",
        "judgments",
        "prompts",
    ]
    again, _ = prepare(store, DATASET, SessionOptions(budget=4))
    assert len(again.verdicts) == 4
    client2 = TestClient(create_app(again))
    assert "Nothing left to label" in _login(client2, "alice", tokens["alice"])


def _store(tmp_path: Path) -> object:
    from prefmill.storage import Store

    return Store(str(tmp_path))


def test_per_item_limits_annotators_and_orders_differ(shared: Build, tmp_path: Path) -> None:
    state, tokens = _fresh(shared, tmp_path, budget=3, per_item=1)
    alice, bob = TestClient(create_app(state)), TestClient(create_app(state))
    a_html, b_html = _login(alice, "alice", tokens["alice"]), _login(bob, "bob", tokens["bob"])
    assert _hidden(a_html)["item_id"] == _hidden(b_html)["item_id"]  # both see item 1 ...
    alice.post("/answer", data=_hidden(a_html) | {"choice": "1"})
    b_next = bob.post("/answer", data=_hidden(b_html) | {"choice": "2"}).text  # ... both answer it
    assert _hidden(b_next)["item_id"] == state.items[1].item_id
    a_next = alice.get("/").text
    assert _hidden(a_next)["item_id"] == state.items[1].item_id
    alice.post("/answer", data=_hidden(a_next) | {"choice": "1"})
    assert _hidden(bob.get("/").text)["item_id"] == state.items[2].item_id  # item 2 has its 1 annotator
    orders = {order_for(n, i) for n in ("alice", "bob", "carol", "dave") for i in state.items}
    assert orders == {"ab", "ba"}
