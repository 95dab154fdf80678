"""Credentials in an engine URL (``http://user:key@host/v1``): the spec splits at the URL's own '@',
errors never show the key, the recipe carries it hidden and the engine still sends it (as basic auth,
never in a URL); an inline secret option is refused by line, without its value."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fault_server import FaultServer
from test_openai_engine import FAST, req

from prefmill.engines.openai.transport import split_credentials
from prefmill.engines.registry import clear_engines, get_engine, loaded_engines, parse_spec
from prefmill.errors import EngineError, RecipeError
from prefmill.recipe import parse_recipe
from prefmill.redaction import redact, reveal

KEY = "sk-s3cr3t-9f8e"
BASE = "dataset: d\nprompts: {sources: [{kind: arithmetic, n: 2}]}\n"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as s:
        yield s
    clear_engines()


def test_spec_splits_at_the_url_not_in_its_userinfo() -> None:
    spec = parse_spec(f"openai:org/m@http://alice:{KEY}@127.0.0.1:8000/v1?max_n=2")
    assert (spec.model, spec.url, spec.options) == (
        "org/m",
        f"http://alice:{KEY}@127.0.0.1:8000/v1",
        {"max_n": 2},
    )
    assert parse_spec("openai:m@x@https://h/v1").model == "m@x"  # an '@' in the model name stays there
    with pytest.raises(EngineError) as err:
        parse_spec(f"openai:m@http://alice:{KEY}@h/v1?oops")
    assert KEY not in str(err.value) and "alice:***@h" in str(err.value)


@pytest.mark.parametrize("option", ["api_key", "token", "password"])
def test_inline_secret_option_is_refused_without_its_value(option: str) -> None:
    with pytest.raises(EngineError, match=f"option {option} holds a secret") as err:
        parse_spec(f"openai:m@http://h/v1?{option}={KEY}")
    assert KEY not in str(err.value)
    text = BASE + f"synthesis:\n  engine: openai:m@http://h/v1?max_n=1&{option}={KEY}\n"
    with pytest.raises(RecipeError) as rerr:
        parse_recipe(text, name="r.yaml")
    assert str(rerr.value).startswith(f"r.yaml line 4: engine option {option} holds a secret")
    assert KEY not in str(rerr.value)


def test_recipe_carries_the_url_secret_hidden_and_the_engine_sends_it(server: FaultServer) -> None:
    url = server.url.replace("http://", f"http://alice:{KEY}@")
    recipe = parse_recipe(BASE + f"synthesis:\n  engine: openai:m@{url}\n")
    hidden = recipe.synthesis.engine
    assert KEY not in recipe.model_dump_json() and hidden == f"openai:m@{redact(url)}"
    assert reveal(parse_spec(hidden).url or "") == url
    engine = get_engine(hidden, **FAST)
    assert [g.text for g in engine.generate([req("ok:a", 1)])] == ["echo a"]
    sent = server.headers[-1]
    auth = next(v for k, v in sent.items() if k.lower() == "authorization")
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == f"alice:{KEY}"
    assert KEY not in repr(engine.__dict__) + " ".join(loaded_engines())


def test_split_credentials_keeps_the_url_bare() -> None:
    bare, auth = split_credentials("http://alice:p%40ss@h:1/v1")
    assert bare == "http://h:1/v1" and auth is not None
    assert split_credentials("http://h/v1") == ("http://h/v1", None)
    assert redact("http://alice:p@ss@h/v1 and https://tok@x/y?api_key=z") == (
        "http://alice:***@h/v1 and https://***@x/y?api_key=***"
    )
