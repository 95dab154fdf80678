"""What an annotation session keeps on disk, under ``<root>/<dataset>/_annotations/``:

* ``annotators.json`` -- name -> sha256 of the annotator's token (the token itself is printed once);
* ``secret.key`` -- the key that signs session cookies and CSRF tokens (so sign-ins survive a restart);
* ``verdicts.jsonl`` -- every answer, one JSON object a line, appended and fsync'd before the answer
  is acknowledged, so a killed server loses nothing answered; a torn last line (a crash during the
  write) is ignored on reading.

Files are created with mode 0600. The store needs a local storage root."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from prefmill.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: not a table name (a leading "_"), so `prefmill tables` and `gc` never take it for one
ANNOTATIONS_DIR = "_annotations"


def annotations_dir(root: str, dataset: str) -> Path:
    """The session folder of ``dataset``; a local root only (an object-store root is refused)."""
    if "://" in root and not root.startswith("file://"):
        raise InputError(
            f"prefmill annotate needs a local storage root, not {root}; copy the dataset to a local folder"
        )
    base = Path(root.removeprefix("file://")).resolve()
    return base / dataset / ANNOTATIONS_DIR


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _write_private(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class AnnotationStore:
    """Annotators, the signing key and the verdict log of one dataset (thread-safe appends)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    @property
    def verdicts_path(self) -> Path:
        return self.folder / "verdicts.jsonl"

    def _ensure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- annotators ------------------------------------------------------------------------------
    def annotators(self) -> dict[str, str]:
        path = self.folder / "annotators.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text())
        return {str(k): str(v) for k, v in data.items()}

    def add_annotator(self, name: str) -> str:
        """Create (or renew) ``name``'s token; returns the token (stored only as a hash)."""
        if not NAME.match(name):
            raise InputError(
                f"annotator name {name!r}: use 1-64 letters, digits, '_', '.', '-' (starting with a "
                "letter or digit)"
            )
        self._ensure()
        with self._lock:
            known = self.annotators()
            token = secrets.token_urlsafe(18)
            known[name] = _digest(token)
            _write_private(self.folder / "annotators.json", json.dumps(known, indent=2).encode())
        return token

    def check_token(self, name: str, token: str) -> bool:
        """Whether ``token`` is ``name``'s (constant-time comparison)."""
        expected = self.annotators().get(name)
        return expected is not None and hmac.compare_digest(expected, _digest(token))

    # -- signing ---------------------------------------------------------------------------------
    def secret(self) -> bytes:
        path = self.folder / "secret.key"
        if not path.exists():
            self._ensure()
            with self._lock:
                if not path.exists():
                    _write_private(path, secrets.token_hex(32).encode())
        return path.read_bytes().strip()

    def sign(self, message: str) -> str:
        return hmac.new(self.secret(), message.encode(), hashlib.sha256).hexdigest()[:32]

    def verify(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)

    # -- verdicts --------------------------------------------------------------------------------
    def append(self, verdict: dict[str, Any]) -> None:
        """Append one verdict and fsync it before returning."""
        self._ensure()
        line = (json.dumps(verdict, sort_keys=True, ensure_ascii=False) + "\n").encode()
        with self._lock:
            fd = os.open(self.verdicts_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def verdicts(self) -> list[dict[str, Any]]:
        """Every verdict in the order given; a torn or garbled line is skipped."""
        path = self.verdicts_path
        if not path.exists():
            return []
        out = []
        with self._lock:
            data = path.read_bytes()
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                continue
            if isinstance(row, dict):
                out.append(row)
        return out
