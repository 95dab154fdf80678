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
import uuid
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

    # -- file operations the store's layers share (catalog, writer, leases, gc) -----------------
    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def list_dirs(self, path: str) -> list[str]:
        """Names of the folders directly under ``path``, sorted; none when it is not a folder."""
        info = self.fs.get_file_info(path)
        if info.type != pafs.FileType.Directory:
            return []
        entries = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(e.base_name for e in entries if e.type == pafs.FileType.Directory)

    def list_files(self, path: str) -> list[pafs.FileInfo]:
        entries = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return [e for e in entries if e.type == pafs.FileType.File]

    def read_text(self, path: str) -> str:
        with self.fs.open_input_stream(path) as f:
            return f.read().decode("utf-8")

    def write_atomic(self, path: str, payload: bytes, *, replace: bool) -> bool:
        """Write bytes under a temporary name, then move into place. Returns False when ``replace`` is
        off and the target already existed (the existing file is kept).

        On an object store (a root opened through fsspec) there is no rename: one PUT is already
        atomic (readers see the whole object or none), and with ``replace`` off it is a conditional
        create (``If-None-Match: *`` on S3), so the first writer wins there too."""
        if self.fsspec_fs is not None:
            try:
                self.fsspec_fs.pipe_file(path, payload, mode="overwrite" if replace else "create")
            except FileExistsError:
                return False
            return True
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{name}"
        with self.fs.open_output_stream(tmp) as out:
            out.write(payload)
        return self.move_into_place(tmp, path, replace=replace)

    def move_into_place(self, tmp: str, path: str, *, replace: bool) -> bool:
        """Move ``tmp`` to ``path``; with ``replace`` off the first writer wins (False: ``path``
        existed and was kept, ``tmp`` is removed)."""
        if self.is_local:
            if replace:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)  # fails if the target exists: first writer wins, atomically
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        if not replace and self.exists(path):
            self.fs.delete_file(tmp)
            return False
        self.fs.move(tmp, path)
        return True


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
