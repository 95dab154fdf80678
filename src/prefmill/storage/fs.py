"""Resolve a storage root (local folder, ``file://``, ``s3://``, ``gs://`` or any fsspec URI) to a
pyarrow filesystem and a base path inside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from prefmill.errors import StorageError

DEFAULT_ROOT = "./prefmill-data"


def default_root() -> str:
    """``$PREFMILL_HOME`` if set, else ``./prefmill-data``."""
    return os.environ.get("PREFMILL_HOME") or DEFAULT_ROOT


@dataclass(frozen=True)
class Location:
    """A filesystem and the base path of the store inside it."""

    fs: pafs.FileSystem
    base: str
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts]) if self.base else "/".join(parts)


def resolve(root: str | os.PathLike[str] | None) -> Location:
    """Turn a root string into a ``Location``. Plain paths become absolute local paths."""
    text = os.fspath(root) if root is not None else default_root()
    if "://" not in text:
        path = str(Path(text).expanduser().resolve())
        return Location(pafs.LocalFileSystem(), path, path)
    try:
        fs, base = pafs.FileSystem.from_uri(text)
        return Location(fs, base.rstrip("/") or base, text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        pass
    try:
        import fsspec
        from fsspec.core import url_to_fs

        ffs, base = url_to_fs(text)
        if not isinstance(ffs, fsspec.AbstractFileSystem):  # pragma: no cover - defensive
            raise TypeError(type(ffs))
        return Location(pafs.PyFileSystem(pafs.FSSpecHandler(ffs)), base.rstrip("/"), text)
    except Exception as exc:
        raise StorageError(
            f"storage root '{text}': no filesystem handles this URI ({exc}); use a local folder, "
            "file://, s3://, gs:// or install the fsspec package for that scheme"
        ) from exc
