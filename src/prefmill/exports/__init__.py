"""Exports: a table version written in the format a training library loads unchanged, with a dataset card.

``export_table`` writes into a temporary folder next to ``out`` and moves it into place only when
every file is written, so a failed export never leaves a half-written folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import ExportError
from prefmill.exports.card import render_card
from prefmill.exports.formats import FORMATS, format_sql, get_format
from prefmill.storage import Manifest, Store
from prefmill.storage.duck import bind, connect, to_arrow

CONTAINERS = ("parquet", "disk", "jsonl")

__all__ = ["CONTAINERS", "FORMATS", "ExportResult", "default_table", "export_table"]


@dataclass
class ExportResult:
    out: str
    format: str
    rows: int
    files: list[str] = field(default_factory=list)
    pushed_to: str | None = None


def default_table(fmt: str) -> str:
    return get_format(fmt).table or "pairs"


def _write_parquet(table: pa.Table, folder: Path, shard_rows: int) -> list[str]:
    data = folder / "data"
    data.mkdir(parents=True)
    n = max(1, -(-table.num_rows // shard_rows))
    names = []
    for i in range(n):
        name = f"train-{i:05d}-of-{n:05d}.parquet"
        pq.write_table(table.slice(i * shard_rows, shard_rows), data / name)
        names.append(f"data/{name}")
    return names


def _write_jsonl(table: pa.Table, folder: Path) -> list[str]:
    path = folder / "train.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return ["train.jsonl"]


def _as_dataset(table: pa.Table) -> Any:
    try:
        import datasets
    except ImportError:
        raise ExportError(
            "the `disk` and hub exports need Hugging Face datasets: pip install datasets"
        ) from None
    return datasets.Dataset(table)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished ``tmp`` folder (the caller checked that replacing is allowed)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_table(
    store: Store,
    m: Manifest,
    *,
    fmt: str,
    out: str | os.PathLike[str],
    to: list[str] | tuple[str, ...] = ("parquet",),
    conversational: bool = False,
    where: str | None = None,
    overwrite: bool = False,
    hub_repo: str | None = None,
    hub_token: str | None = None,
    recipe: dict[str, Any] | None = None,
    shard_rows: int = 100_000,
) -> ExportResult:
    """Write version ``m`` to folder ``out`` in export format ``fmt`` (see ``prefmill.exports.formats``),
    in each container of ``to`` (``parquet`` shards under data/, ``disk`` = datasets' save_to_disk under
    hf/, ``jsonl``), with a dataset card README.md; push to the Hub when ``hub_repo`` is given."""
    spec = get_format(fmt)
    unknown = [c for c in to if c not in CONTAINERS]
    if unknown or not to:
        raise ExportError(f"unknown export container(s) {unknown or to}: choose from {', '.join(CONTAINERS)}")
    sql = format_sql(spec, m.table, conversational)
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise ExportError(f"{out_path} is a file; --out must be a folder")
    if out_path.exists() and any(out_path.iterdir()) and not overwrite:
        raise ExportError(f"{out_path} exists and is not empty; pass --overwrite to replace it")

    lineage = store.ancestors(m)
    con: duckdb.DuckDBPyConnection = connect()
    try:
        bind(con, store, "raw_source", m)
        for parent in lineage:
            if parent.table in ("prompts", "judgments"):
                bind(con, store, parent.table, parent)
        if m.table in ("prompts", "judgments"):
            bind(con, store, m.table, m)
        names = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        if conversational and "prompts" not in names and spec.reads_prompts:
            raise ExportError(
                f"{m.table}@{m.version} has no prompts table in its lineage: "
                "export it without --conversational"
            )
        filt = f" WHERE {where}" if where else ""
        try:
            con.execute(f"CREATE TEMP VIEW source AS SELECT * FROM raw_source{filt}")
            table = to_arrow(con.sql(sql))
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0]
            raise ExportError(f"export of {m.table}@{m.version} ({fmt}, where={where!r}): {first}") from exc

        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            files: list[str] = []
            if "parquet" in to:
                files += _write_parquet(table, tmp, shard_rows)
            if "jsonl" in to:
                files += _write_jsonl(table, tmp)
            if "disk" in to:
                _as_dataset(table).save_to_disk(str(tmp / "hf"))
                files.append("hf/")
            card = render_card(
                dataset=m.dataset,
                manifest=m,
                lineage=lineage,
                fmt_name=fmt,
                columns=table.column_names,
                trainer=spec.trainer,
                conversational=conversational,
                rows=table.num_rows,
                where=where,
                containers=list(to),
                con=con,
                has_judgments="judgments" in names,
                recipe=recipe,
            )
            (tmp / "README.md").write_text(card, encoding="utf-8")
            files.append("README.md")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        con.close()
    _move_into_place(tmp, out_path)
    result = ExportResult(str(out_path), fmt, table.num_rows, files)
    if hub_repo:  # not exercised in tests: needs a token and the network
        token = hub_token or os.environ.get("HF_TOKEN")
        if not token:
            raise ExportError(f"pushing to {hub_repo} needs a token: set $HF_TOKEN")
        _as_dataset(table).push_to_hub(hub_repo, token=token)
        from huggingface_hub import HfApi

        HfApi(token=token).upload_file(
            path_or_fileobj=str(out_path / "README.md"),
            path_in_repo="README.md",
            repo_id=hub_repo,
            repo_type="dataset",
        )
        result.pushed_to = hub_repo
    return result
