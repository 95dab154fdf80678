"""``prefmill.ids`` for whole columns: the same ids and seeds, built column-wise.

A row's id is ``content_id(value)`` (sha256 of canonical JSON, first 16 hex characters) and a seed
``seed_for(...)``; here the canonical JSON of many rows is joined by Arrow around the parts the rows
share, each text is hashed in one list comprehension, and the digests are read out by numpy (hex
ids, 63-bit seeds), so a row costs one sha256 call and no JSON encoding. Unit tests hold every
function equal to its row-by-row formula. pyarrow and numpy are imported on first use, so importing
this module stays as light as ``prefmill.ids``.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

from prefmill.ids import ID_LENGTH, canonical_json

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

_DIGEST = 32  # bytes of a sha256 digest
#: Characters ``canonical_json`` escapes inside a string (``ensure_ascii=False``): the quote, the
#: backslash and the control characters below U+0020.
_ESCAPED = r'["\\\x00-\x1f]'


@functools.cache
def _hex_table() -> np.ndarray:
    """The two lowercase hex characters of each byte value, as a (256, 2) uint8 array."""
    import numpy as np

    return np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), np.uint8).reshape(256, 2)


def sha256_digests(texts: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """The sha256 digest of each string's UTF-8 bytes."""
    import pyarrow as pa

    sha = hashlib.sha256
    return [sha(t).digest() for t in texts.cast(pa.binary()).to_pylist()]


def hex_ids(digests: list[bytes]) -> pa.Array:
    """The first ``ID_LENGTH`` lowercase hex characters of each digest (``hexdigest()[:16]``)."""
    import numpy as np
    import pyarrow as pa

    n = len(digests)
    if not n:
        return pa.array([], pa.string())
    raw = np.frombuffer(b"".join(digests), np.uint8).reshape(n, _DIGEST)[:, : ID_LENGTH // 2]
    text = np.ascontiguousarray(_hex_table()[raw].reshape(n * ID_LENGTH))
    offsets = np.arange(0, (n + 1) * ID_LENGTH, ID_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def digest_seeds(digests: list[bytes]) -> np.ndarray:
    """``int.from_bytes(d[:8], "big") & (2**63 - 1)`` of each digest (``seed_for``), as int64."""
    import numpy as np

    if not digests:
        return np.zeros(0, np.int64)
    heads = np.frombuffer(b"".join(digests), np.dtype(">u8")).reshape(len(digests), _DIGEST // 8)[:, 0]
    return (heads & np.uint64((1 << 63) - 1)).astype(np.int64)


def content_ids(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``content_id`` of rows whose canonical JSON is ``texts``: sha256, first 16 hex characters."""
    return hex_ids(sha256_digests(texts))


def json_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``canonical_json`` of each string (quotes included; null -> ``null``): a string without a
    quote, a backslash or a control character is itself in quotes; the others are encoded one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = values.cast(pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    escaped = pc.fill_null(pc.match_substring_regex(values, _ESCAPED), False)
    if values.null_count:
        escaped = pc.or_(escaped, pc.is_null(values))
    if not pc.any(escaped).as_py():
        return quoted
    where = pc.indices_nonzero(escaped)
    encoded = pa.array([canonical_json(v) for v in values.take(where).to_pylist()], pa.string())
    return _scatter(quoted, where, encoded)


def _scatter(base: pa.Array, where: pa.Array, values: pa.Array) -> pa.Array:
    """``base`` with ``values`` at the positions ``where`` (ascending)."""
    import numpy as np
    import pyarrow as pa

    index = np.arange(len(base), dtype=np.int64)
    index[where.to_numpy()] = len(base) + np.arange(len(values), dtype=np.int64)
    return pa.concat_arrays([base, values]).take(pa.array(index))


def join(*parts: Any) -> pa.Array:
    """Strings joined element-wise: each part an Arrow string array or a Python string (one for
    every row)."""
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")
