"""Exports: a table version written in the format a training library loads unchanged, with a dataset card.

Train/test splits are by prompt (``prefmill.exports.split``); pushing uses the Hub's own client
(``prefmill.exports.hub``). ``export_table`` writes into a temporary folder next to ``out`` and moves
it into place only when every file is written, so a failed export never leaves a half-written folder.
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

from prefmill.errors import ExportError, QueryError
from prefmill.exports.card import render_card
from prefmill.exports.formats import FORMATS, format_sql, get_format
from prefmill.exports.hub import check_hub, push_folder
from prefmill.exports.split import define_split, split_view_sql
from prefmill.storage import Manifest, Store
from prefmill.storage.duck import (
    bind,
    connect,
    error_line,
    lock_down,
    to_arrow,
    version_paths,
    where_expression,
)

CONTAINERS = ("parquet", "disk", "jsonl")

__all__ = ["CONTAINERS", "FORMATS", "ExportResult", "default_table", "export_table"]


@dataclass
class ExportResult:
    out: str
    format: str
    rows: int
    files: list[str] = field(default_factory=list)
    pushed_to: str | None = None
    splits: dict[str, int] = field(default_factory=dict)  # rows per split
    conversational: bool = False


def default_table(fmt: str) -> str:
    return get_format(fmt).table or "pairs"


def _write_parquet(table: pa.Table, folder: Path, shard_rows: int, split: str) -> list[str]:
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    n = max(1, -(-table.num_rows // shard_rows))
    names = []
    for i in range(n):
        name = f"{split}-{i:05d}-of-{n:05d}.parquet"
        pq.write_table(table.slice(i * shard_rows, shard_rows), data / name)
        names.append(f"data/{name}")
    return names


def _write_jsonl(table: pa.Table, folder: Path, split: str) -> list[str]:
    path = folder / f"{split}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for batch in table.to_batches(max_chunksize=10_000):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return [f"{split}.jsonl"]


def _save_to_disk(tables: dict[str, pa.Table], folder: Path) -> None:
    """datasets' ``save_to_disk`` (a ``DatasetDict`` when there are splits), without its progress bars."""
    datasets = _datasets()
    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        if list(tables) == ["train"]:
            datasets.Dataset(tables["train"]).save_to_disk(str(folder))
        else:
            datasets.DatasetDict({k: datasets.Dataset(t) for k, t in tables.items()}).save_to_disk(
                str(folder)
            )
    finally:
        if was_on:
            datasets.enable_progress_bars()


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ExportError("the `disk` export needs Hugging Face datasets: pip install datasets") from None
    return datasets


def _move_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished ``tmp`` folder (the caller checked that replacing is allowed)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _where_condition(m: Manifest, fmt: str, where: str | None) -> str | None:
    """``where`` checked to be one SQL condition (``where_expression``), or None."""
    if not where:
        return None
    try:
        return where_expression(where, what="where")
    except QueryError as exc:
        raise ExportError(f"export of {m.table}@{m.version} ({fmt}): {exc}") from exc


def step_judgments(store: Store, steps: Manifest) -> Manifest | None:
    """The newest judgments version made from ``steps`` (it lists that version as a parent)."""
    made = [
        j
        for j in store.versions(steps.dataset, "judgments")
        if any(p.table == "steps" and p.version == steps.version for p in j.parents)
    ]
    return made[-1] if made else None


def export_table(
    store: Store,
    m: Manifest,
    *,
    fmt: str,
    out: str | os.PathLike[str],
    to: list[str] | tuple[str, ...] = ("parquet",),
    conversational: bool | None = None,
    where: str | None = None,
    overwrite: bool = False,
    hub_repo: str | None = None,
    hub_token: str | None = None,
    private: bool = False,
    test_size: float | None = None,
    seed: int = 0,
    license: str | None = None,
    language: list[str] | None = None,
    recipe: dict[str, Any] | None = None,
    shard_rows: int = 100_000,
) -> ExportResult:
    """Write version ``m`` to folder ``out`` in export format ``fmt`` (see ``prefmill.exports.formats``),
    in each container of ``to`` (``parquet`` shards under data/, ``disk`` = datasets' save_to_disk under
    hf/, ``jsonl``), with a dataset card README.md; push to the Hub when ``hub_repo`` is given (the token
    is checked before anything is written).

    ``conversational``: TRL's conversational format; None (the default) picks it whenever the format has
    one and the prompts' chats are in the lineage, so a trainer applies the chat template as synthesis
    did. ``test_size``: also write a test split of that share (< 1) or number (>= 1) of prompts, chosen
    by ``seed`` (``prefmill.exports.split``)."""
    spec = get_format(fmt)
    unknown = [c for c in to if c not in CONTAINERS]
    if unknown or not to:
        raise ExportError(f"unknown export container(s) {unknown or to}: choose from {', '.join(CONTAINERS)}")
    format_sql(spec, m.table, bool(conversational))  # the table fits the format (checked first)
    out_path = Path(out).expanduser().resolve()
    if out_path.exists() and not out_path.is_dir():
        raise ExportError(f"{out_path} is a file; --out must be a folder")
    if out_path.exists() and any(out_path.iterdir()) and not overwrite:
        raise ExportError(f"{out_path} exists and is not empty; pass --overwrite to replace it")
    target = check_hub(hub_repo, hub_token, private=private) if hub_repo else None

    condition = _where_condition(m, fmt, where)
    lineage = store.ancestors(m)
    con: duckdb.DuckDBPyConnection = connect()
    try:
        bind(con, store, "raw_source", m)
        bound = [m]
        for parent in lineage:
            if parent.table in ("prompts", "judgments"):
                bind(con, store, parent.table, parent)
                bound.append(parent)
        if m.table in ("prompts", "judgments"):
            bind(con, store, m.table, m)
        if m.table == "steps" and (labels := step_judgments(store, m)) is not None:
            bind(con, store, "judgments", labels)  # the step labels made from these steps
            bound.append(labels)
        lock_down(con, version_paths(store, bound))
        names = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        if spec.name == "trl-stepwise" and "judgments" not in names:
            raise ExportError(
                f"{m.table}@{m.version} has no judgments made from it: add step-level judges (rollout, "
                "rollout_search, step_llm) to the recipe and build again"
            )
        if "prompts" not in names:  # the standard formats look conversations up there (none: the text)
            chat = "STRUCT(role VARCHAR, content VARCHAR)[]"
            con.execute(f"CREATE TEMP TABLE prompts (prompt_id VARCHAR, messages {chat})")
        if conversational is None:
            conversational = spec.chat_sql is not None and ("prompts" in names or not spec.reads_prompts)
        sql = format_sql(spec, m.table, conversational)
        if conversational and "prompts" not in names and spec.reads_prompts:
            raise ExportError(
                f"{m.table}@{m.version} has no prompts table in its lineage: "
                "export it without --conversational"
            )
        filt = f" WHERE {condition}" if condition else ""
        tables: dict[str, pa.Table] = {}
        prompts_per_split: dict[str, int] = {}
        try:
            con.execute(f"CREATE TEMP VIEW raw_filtered AS SELECT * FROM raw_source{filt}")
            if test_size is None:
                con.execute("CREATE TEMP VIEW source AS SELECT * FROM raw_filtered")
                tables["train"] = to_arrow(con.sql(sql))
            else:
                prompts_per_split = define_split(con, test_size, seed)
                for split in ("train", "test"):
                    con.execute(split_view_sql(split))
                    tables[split] = to_arrow(con.sql(sql))
        except duckdb.Error as exc:
            first = error_line(exc)
            raise ExportError(f"export of {m.table}@{m.version} ({fmt}, where={where!r}): {first}") from exc

        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.tmp-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            files: list[str] = []
            for split, table in tables.items():
                if "parquet" in to:
                    files += _write_parquet(table, tmp, shard_rows, split)
                if "jsonl" in to:
                    files += _write_jsonl(table, tmp, split)
            if "disk" in to:
                _save_to_disk(tables, tmp / "hf")
                files.append("hf/")
            # the card describes the whole table; the splits are views of it
            con.execute("CREATE OR REPLACE TEMP VIEW source AS SELECT * FROM raw_filtered")
            card = render_card(
                dataset=m.dataset,
                manifest=m,
                lineage=lineage,
                fmt_name=fmt,
                schema=tables["train"].schema,
                trainer=spec.trainer,
                conversational=conversational,
                splits={k: t.num_rows for k, t in tables.items()},
                split_bytes={k: t.nbytes for k, t in tables.items()},
                prompts_per_split=prompts_per_split,
                split_seed=seed if test_size is not None else None,
                where=where,
                containers=list(to),
                con=con,
                has_judgments="judgments" in names,
                recipe=recipe,
                license=license,
                language=language,
                hub_repo=hub_repo,
            )
            (tmp / "README.md").write_text(card, encoding="utf-8")
            files.append("README.md")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        con.close()
    _move_into_place(tmp, out_path)
    rows = sum(t.num_rows for t in tables.values())
    result = ExportResult(
        str(out_path),
        fmt,
        rows,
        files,
        splits={k: t.num_rows for k, t in tables.items()},
        conversational=conversational,
    )
    if target is not None:
        result.pushed_to = push_folder(
            target, out_path, message=f"prefmill export of {m.table}@{m.version} as {fmt}"
        )
    return result
