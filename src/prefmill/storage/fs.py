"""Resolve a storage root (local folder, ``file://``, ``s3://``, ``gs://`` or any fsspec URI) to a
pyarrow filesystem and a base path inside it.

Remote roots go through fsspec first (``s3://`` needs ``s3fs``, ``gs://`` needs ``gcsfs``), with its
directory-listing cache off: shards are written by other processes (Dask workers) and a stale listing
would hide them. Credentials and endpoints come from the environment, never from a recipe:
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_ENDPOINT_URL`` (an S3-compatible server such
as MinIO), or fsspec's own ``FSSPEC_S3='{"endpoint_url": ...}'`` / ``FSSPEC_S3_<OPTION>`` variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    #: the fsspec filesystem behind ``fs`` when the root went through fsspec (object stores): the store
    #: uses it for single-request writes (``pipe_file``) and conditional creates (first writer wins)
    fsspec_fs: Any = None

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
    scheme = text.split("://", 1)[0].lower()
    reason: Exception | None = None
    if scheme != "file":  # file:// stays on pyarrow's local filesystem (atomic renames, hard links)
        found = _fsspec_location(text)
        if isinstance(found, Location):
            return found
        reason = found
    try:
        fs, base = pafs.FileSystem.from_uri(text)
        return Location(fs, base.rstrip("/") or base, text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OSError) as exc:
        reason = reason or exc
    hint = _INSTALL.get(scheme)
    fix = f"install {hint}" if hint else "use a local folder, file://, s3:// (s3fs) or gs:// (gcsfs)"
    raise StorageError(f"storage root '{text}': no filesystem handles this URI ({reason}); {fix}")


#: the package that adds an fsspec scheme, for the error message
_INSTALL = {
    "s3": "s3fs (pip install s3fs)",
    "s3a": "s3fs (pip install s3fs)",
    "gs": "gcsfs (pip install gcsfs)",
    "gcs": "gcsfs (pip install gcsfs)",
    "az": "adlfs (pip install adlfs)",
    "abfs": "adlfs (pip install adlfs)",
}


def _fsspec_location(text: str) -> Location | Exception:
    """The root through fsspec, or why fsspec cannot open it."""
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        return exc
    try:
        try:
            ffs, base = url_to_fs(text, use_listings_cache=False)
        except TypeError:  # an implementation that takes no listing-cache option
            ffs, base = url_to_fs(text)
    except (ImportError, ValueError, TypeError, OSError) as exc:
        return exc
    if not isinstance(ffs, fsspec.AbstractFileSystem):  # pragma: no cover - defensive
        return TypeError(f"fsspec returned {type(ffs).__name__}")
    return Location(pafs.PyFileSystem(pafs.FSSpecHandler(ffs)), base.rstrip("/"), text, fsspec_fs=ffs)
