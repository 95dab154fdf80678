"""Offline import: existing responses from a file or an HF dataset folder become ``candidates`` rows.

A source is read into a *long* table, one row per response, whatever its layout:

* long format: one row per response, the response text in ``response_field``;
* wide format: ``response_field`` holds a list, one entry per response -- each entry a string, or an
  object holding ``response_field`` (and optionally ``model_field`` / ``rating_field``), as in
  UltraFeedback's ``completions``. A ``model_field`` / ``rating_field`` column may hold one value for
  the row or a list aligned with the responses. An object's text is under ``response_field``, else
  ``response`` / ``text`` / ``content`` / ``completion``.

The prompt is given like in prompt files: text in ``prompt_field`` or a chat in ``messages_field``;
its ``prompt_id`` is computed the same way (``content_id({"messages": ...})``), so a response matches
its prompt whatever file it came from. Rows whose prompt is not in the prompts table are an
``InputError`` naming the file and line (``on_unmatched='error'``, the default) or are dropped and
counted (``'skip'``). A malformed row (no response, a response that is not text, a rating that is not a
number) is an ``InputError`` naming file, line and field: an import is all-or-nothing.

Locations: ``file.jsonl:12`` (line), ``file.csv:row 5`` (the line the record starts on),
``file.parquet:row 5`` / ``folder:row 5`` (1-based data row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.records import read_csv, read_jsonl
from prefmill.storage.schemas import conform, empty_table

ORIGIN = "offline"
STRATEGY = "offline"
#: Keys holding the text of a response object in a wide list, after ``response_field`` itself.
_TEXT_KEYS = ("response", "text", "content", "completion")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class OfflineSpec:
    """Where an offline source is and which columns hold what (see ``recipe.OfflineSource``)."""

    path: str
    format: str | None = None
    prompt_field: str = "prompt"
    messages_field: str = "messages"
    response_field: str = "response"
    model_field: str = "model"
    rating_field: str = "rating"
    generator: str | None = None
    on_unmatched: str = "error"

    @property
    def label(self) -> str:
        """``offline:<file name>``: the default generator and the ``policy`` of the imported rows."""
        return f"offline:{Path(self.path).name}"


def _format(spec: OfflineSpec) -> str:
    path = Path(spec.path)
    if spec.format:
        return spec.format
    if path.is_dir():
        return "hf"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: cannot tell the format of offline responses from the suffix '{path.suffix}'; "
            "use .jsonl, .csv, .parquet, a dataset folder, or set `format:`"
        )
    return fmt


def _rows(spec: OfflineSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) for every record of the source."""
    path = Path(spec.path)
    if not path.exists():
        raise InputError(f"offline responses not found: {path}; fix `synthesis.offline[].path`")
    fmt = _format(spec)
    name = path.name
    if fmt == "jsonl":
        for lineno, row in read_jsonl(path, name=name, example='{"prompt": ..., "response": ...}'):
            yield f"{name}:{lineno}", row
    elif fmt == "csv":
        for lineno, row in read_csv(path, name=name):
            yield f"{name}:row {lineno}", row
    else:
        for i, row in enumerate(_arrow_table(path, fmt).to_pylist(), 1):
            yield f"{name}:row {i}", row


def _arrow_table(path: Path, fmt: str) -> pa.Table:
    try:
        if fmt == "parquet" and path.is_file():
            return pq.read_table(path)
        files = sorted(path.rglob("*.parquet"))
        if fmt == "parquet" or (files and not (path / "dataset_info.json").exists()):
            if not files:
                raise InputError(f"{path}: the folder holds no .parquet files")
            return pa.concat_tables([pq.read_table(p) for p in files], promote_options="default")
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if len(ds) != 1:
                raise InputError(
                    f"{path}: a dataset with splits {', '.join(ds)}; point `path` at one split's folder"
                )
            ds = next(iter(ds.values()))
        return ds.with_format("arrow")[:]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read offline responses ({type(exc).__name__}: {exc})") from None


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    chat = json.loads(value) if isinstance(value, str) else value
    if (
        not isinstance(chat, list)
        or not chat
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in chat
        )
    ):
        raise InputError(f"{where}: field '{field}' is not a chat (a list of {{role, content}})")
    return [{"role": m["role"], "content": m["content"]} for m in chat]


def _rating(value: Any, where: str, field: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InputError(f"{where}: field '{field}' is a boolean, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: field '{field}' is {value!r}, not a number; fix or drop it") from None


def _aligned(value: Any, n: int, where: str, field: str) -> list[Any]:
    if isinstance(value, list):
        if len(value) != n:
            raise InputError(f"{where}: field '{field}' lists {len(value)} values for {n} responses")
        return value
    return [value] * n


@lru_cache(maxsize=8)
def _read_cached(spec: OfflineSpec, stamp: tuple[int, int]) -> pa.Table:
    return _read(spec)


def read_offline(spec: OfflineSpec) -> pa.Table:
    """The source as a long table: prompt_id, response, model, rating, location (one row per response).

    Cached per process by path, size and modification time (a shard task per prompt shard reads it)."""
    path = Path(spec.path)
    st = path.stat() if path.exists() else None
    if st is None or path.is_dir():
        return _read(spec)
    return _read_cached(spec, (st.st_size, st.st_mtime_ns))


def _read(spec: OfflineSpec) -> pa.Table:
    pids: list[str] = []
    responses: list[str] = []
    models: list[str | None] = []
    ratings: list[float | None] = []
    locations: list[str] = []
    rf, mf, gf = spec.response_field, spec.model_field, spec.rating_field
    for where, row in _rows(spec):
        if row.get(spec.messages_field) not in (None, ""):
            messages = _messages(row[spec.messages_field], where, spec.messages_field)
        elif isinstance(row.get(spec.prompt_field), str) and row[spec.prompt_field].strip():
            messages = [{"role": "user", "content": row[spec.prompt_field]}]
        else:
            raise InputError(
                f"{where}: no prompt: set field '{spec.prompt_field}' (text) or '{spec.messages_field}' "
                "(chat), or name the right columns with prompt_field / messages_field"
            )
        pid = content_id({"messages": messages})
        value = row.get(rf)
        if isinstance(value, list):  # wide format
            n = len(value)
            model_list = _aligned(row.get(mf), n, where, mf)
            rating_list = _aligned(row.get(gf), n, where, gf)
            items = []
            for j, entry in enumerate(value):
                if isinstance(entry, dict):
                    key = next((k for k in (rf, *_TEXT_KEYS) if k in entry), rf)
                    items.append(
                        (entry.get(key), entry.get(mf, model_list[j]), entry.get(gf, rating_list[j]), j)
                    )
                else:
                    items.append((entry, model_list[j], rating_list[j], j))
        else:
            items = [(value, row.get(mf), row.get(gf), None)]
        for text, model, rating, j in items:
            field = rf if j is None else f"{rf}[{j}]"
            if not isinstance(text, str) or not text.strip():
                got = "missing" if text is None else "empty" if isinstance(text, str) else type(text).__name__
                raise InputError(
                    f"{where}: field '{field}' is {got}; every row needs a response text "
                    "(name the column with response_field)"
                )
            pids.append(pid)
            responses.append(text)
            models.append(str(model) if model not in (None, "") else None)
            ratings.append(_rating(rating, where, gf if j is None else f"{gf}[{j}]"))
            locations.append(where)
    if not pids:
        raise InputError(f"{spec.path}: no responses found; the offline source is empty")
    return pa.table(
        {
            "prompt_id": pa.array(pids, pa.string()),
            "response": pa.array(responses, pa.string()),
            "model": pa.array(models, pa.string()),
            "rating": pa.array(ratings, pa.float64()),
            "location": pa.array(locations, pa.string()),
        }
    )


def check_matched(spec: OfflineSpec, rows: pa.Table, prompt_ids: set[str]) -> int:
    """How many rows have no prompt in ``prompt_ids``; with ``on_unmatched='error'`` any is an error
    naming the first one's file and line."""
    pids = rows.column("prompt_id").to_pylist()
    missing = [i for i, p in enumerate(pids) if p not in prompt_ids]
    if missing and spec.on_unmatched == "error":
        where = rows.column("location")[missing[0]].as_py()
        raise InputError(
            f"{where}: the prompt of this response is not in the prompts table ({len(missing)} of "
            f"{len(pids)} responses of {Path(spec.path).name} have no matching prompt); add the prompts to "
            "prompts.sources, or set `on_unmatched: skip` on this offline source to drop such rows"
        )
    return len(missing)


def import_offline(spec: OfflineSpec, rows: pa.Table, prompt_ids: list[str]) -> pa.Table:
    """``candidates`` rows for the responses in ``rows`` whose prompt is in ``prompt_ids``, in prompt
    order, then file order.

    ``generator`` is the row's model, else ``spec.generator``, else ``offline:<file name>``;
    ``sample_index`` counts the responses of one (prompt, generator) in file order; ``candidate_id`` is
    ``content_id([prompt_id, generator, 'offline', <file name>, sample_index, response])``."""
    order = {p: i for i, p in enumerate(prompt_ids)}
    pids = rows.column("prompt_id").to_pylist()
    keep = [i for i, p in enumerate(pids) if p in order]
    if not keep:
        return empty_table("candidates")
    keep.sort(key=lambda i: (order[pids[i]], i))
    responses = rows.column("response").to_pylist()
    models = rows.column("model").to_pylist()
    ratings = rows.column("rating").to_pylist()
    default = spec.generator or spec.label
    name = Path(spec.path).name
    counts: dict[tuple[str, str], int] = {}
    ids, out_pids, gens, idx, texts, rates = [], [], [], [], [], []
    for i in keep:
        gen = models[i] or default
        n = counts.get((pids[i], gen), 0)
        counts[(pids[i], gen)] = n + 1
        ids.append(content_id([pids[i], gen, ORIGIN, name, n, responses[i]]))
        out_pids.append(pids[i])
        gens.append(gen)
        idx.append(n)
        texts.append(responses[i])
        rates.append(ratings[i])
    m = len(ids)
    table = pa.table(
        {
            "candidate_id": pa.array(ids, pa.string()),
            "prompt_id": pa.array(out_pids, pa.string()),
            "response": pa.array(texts, pa.string()),
            "generator": pa.array(gens, pa.string()),
            "origin": pa.array([ORIGIN] * m, pa.string()),
            "sampling": pa.nulls(m, pa.string()),
            "sample_index": pa.array(idx, pa.int32()),
            "n_tokens": pa.nulls(m, pa.int64()),
            "prompt_tokens": pa.nulls(m, pa.int64()),
            "finish_reason": pa.nulls(m, pa.string()),
            "logprob": pa.nulls(m, pa.float64()),
            "latency_ms": pa.nulls(m, pa.float64()),
            "error": pa.nulls(m, pa.string()),
            "policy": pa.array([spec.label] * m, pa.string()),
            "strategy": pa.array([STRATEGY] * m, pa.string()),
            "rating": pa.array(rates, pa.float64()),
        }
    )
    return conform("candidates", table, where=f"offline import of {name}")
