"""Terminal rendering for the CLI: tables of rows, progress bars, the build summary.

Kept apart from cli.py so commands stay short; nothing here imports Prefect.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefmill.progress import eta
from prefmill.storage.hints import command

FORMATS = ("table", "records", "json", "csv")  # records: one block per row, for wide rows


def console(stderr: bool = False) -> Console:
    """A rich console; when output is not a terminal (a pipe, a file) it is 200 columns wide, so
    ids and versions are not folded."""
    file = sys.stderr if stderr else sys.stdout
    width = None if file.isatty() else 200
    return Console(file=file, highlight=False, soft_wrap=False, width=width)


@contextmanager
def paged() -> Iterator[None]:
    """Collect what is printed on stdout inside, then show it through the pager (``$PAGER``, else
    ``less``; printed as it is when stdout is not a terminal)."""
    import pydoc

    buf, saved = io.StringIO(), sys.stdout
    sys.stdout = buf
    try:
        yield
    finally:
        sys.stdout = saved
    pydoc.pager(buf.getvalue().rstrip("\n"))


def _plain(value: Any) -> Any:
    """A JSON-friendly value (NaN becomes null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _cell(value: Any, width: int | None) -> str:
    if value is None:
        return "∅"
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, dict | list):
        text = json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", "⏎ ")
    if width and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def render_rows(
    table: pa.Table, fmt: str = "table", *, title: str | None = None, width: int | None = 60
) -> None:
    """Print an Arrow table as a rich table, a JSON array or CSV on stdout."""
    rows = table.to_pylist()
    out = sys.stdout
    if fmt == "json":
        json.dump([_plain(r) for r in rows], out, ensure_ascii=False, indent=1)
        out.write("\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(table.column_names)
        for r in rows:
            writer.writerow(
                [
                    json.dumps(_plain(v), ensure_ascii=False) if isinstance(v, dict | list) else _plain(v)
                    for v in r.values()
                ]
            )
        out.write(buf.getvalue())
    elif fmt == "records":
        con = console()
        if title:
            con.print(f"[bold]{escape(title)}[/bold]")
        pad = max((len(n) for n in table.column_names), default=0)
        for i, r in enumerate(rows):
            con.print(f"[dim]── row {i + 1} ──[/dim]")
            for name, v in r.items():
                text = _cell(v, width)
                con.print(f"[bold]{escape(name.rjust(pad))}[/bold] {escape(text)}")
    else:
        t = Table(title=title, show_lines=False, header_style="bold")
        for name in table.column_names:
            t.add_column(name, overflow="fold")
        for r in rows:
            t.add_row(*[_cell(v, width) for v in r.values()])
        console().print(t)


def render_records(records: list[dict[str, Any]], fmt: str, *, title: str | None = None) -> None:
    """Print a list of flat dicts (same keys) in the chosen format."""
    if not records:
        if fmt == "json":
            print("[]")
        elif fmt == "table":
            console().print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]")
        return
    render_rows(pa.Table.from_pylist(records), fmt, title=title, width=None)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _rate(per_second: float) -> str:
    """A rate with enough digits to be non-zero when slow (0.023) and no noise when fast (1,204)."""
    return f"{per_second:.2g}" if per_second < 10 else f"{per_second:,.0f}"


class RichReporter:
    """Progress bars per stage: shards done / total, rows (advanced per engine batch), rows/s,
    tokens/s and the ETA of the stage at its rate so far."""

    def __init__(self, con: Console | None = None) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TextColumn("shards {task.fields[shards_done]}/{task.fields[shards]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[in_flight]}"),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[note]}"),
            console=con or console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.tokens: dict[str, int] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage_started(self, stage: str, *, shards: int, done: int, units: int, unit: str) -> None:
        self.started[stage] = time.perf_counter()
        self.tokens[stage] = 0
        fields = {"stage": stage, "unit": unit, "shards": shards, "shards_done": done, "rate": "", "note": ""}
        fields["in_flight"] = ""
        if stage in self.tasks:
            self.progress.update(self.tasks[stage], total=units, completed=0, **fields)
        else:
            self.tasks[stage] = self.progress.add_task(stage, total=units, **fields)

    def advance(self, stage: str, *, units: int = 0, tokens: int = 0) -> None:
        if stage not in self.tasks:
            return
        self.tokens[stage] += tokens
        task_id = self.tasks[stage]
        self.progress.advance(task_id, units)
        elapsed = max(time.perf_counter() - self.started[stage], 1e-9)
        done = self.progress.tasks[task_id].completed
        rate = f"{_rate(done / elapsed)}/s"
        if self.tokens[stage]:
            rate += f" {_rate(self.tokens[stage] / elapsed)} tok/s"
        left = eta(done, self.progress.tasks[task_id].total or 0, elapsed)
        self.progress.update(task_id, rate=rate + (f" · {left}" if left else ""))

    def shard_done(self, stage: str) -> None:
        if stage in self.tasks:
            task_id = self.tasks[stage]
            done = self.progress.tasks[task_id].fields["shards_done"] + 1
            self.progress.update(task_id, shards_done=done, note="")

    def note(self, stage: str, text: str) -> None:
        if stage in self.tasks:
            self.progress.update(self.tasks[stage], note=text)

    def stage_finished(self, stage: str, *, cached: bool) -> None:
        if cached and stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(
                stage,
                total=1,
                completed=1,
                stage=stage,
                unit="cached",
                shards=0,
                shards_done=0,
                rate="",
                note="",
                in_flight="",
            )
        elif stage in self.tasks:
            task_id = self.tasks[stage]
            total = self.progress.tasks[task_id].total
            self.progress.update(task_id, completed=total, in_flight="")

    def in_flight(self, stage: str, *, requests: int, peak: int) -> None:
        if stage in self.tasks:
            self.progress.update(self.tasks[stage], in_flight=f"{requests} in flight (peak {peak})")


class PlainReporter:
    """Progress as plain lines, for output that is not a terminal (CI logs, a file, a pipe): one line
    when a stage starts, one per finished shard (shards done / total, rows, rows/s, tokens/s, ETA),
    one at most every ``NOTE_EVERY`` seconds while a shard's batches finish, one when it ends. No
    cursor movement, no colours, nothing redrawn."""

    def __init__(self, file: Any = None) -> None:
        self.file = file
        self.state: dict[str, dict[str, Any]] = {}
        self.cached: set[str] = set()  # a stage of several tables (prompts) is said cached once

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _print(self, text: str) -> None:
        print(text, file=self.file or sys.stderr, flush=True)

    def _rates(self, st: dict[str, Any]) -> str:
        elapsed = max(time.perf_counter() - st["started"], 1e-9)
        text = f"{st['units']:,}/{st['total']:,} {st['unit']} · {_rate(st['units'] / elapsed)} {st['unit']}/s"
        if st["tokens"]:
            text += f" · {_rate(st['tokens'] / elapsed)} tok/s"
        if st.get("in_flight"):
            text += f" · {st['in_flight']} in flight"
        left = eta(st["units"], st["total"], elapsed)
        return text + f" · {elapsed:.1f}s" + (f" · {left}" if left else "")

    def stage_started(self, stage: str, *, shards: int, done: int, units: int, unit: str) -> None:
        self.state[stage] = {
            "started": time.perf_counter(),
            "shards": shards,
            "shards_done": done,
            "total": units,
            "units": 0,
            "unit": unit,
            "tokens": 0,
        }
        resumed = f" ({done} already done)" if done else ""
        self._print(f"{stage}: {shards} shard(s){resumed}, {units:,} {unit} to do")

    def advance(self, stage: str, *, units: int = 0, tokens: int = 0) -> None:
        st = self.state.get(stage)
        if st is None:
            return
        st["units"] += units
        st["tokens"] += tokens
        # inside a shard (an engine batch done): a line at most every NOTE_EVERY seconds
        now = time.perf_counter()
        if units and st["units"] < st["total"] and now - st.get("noted", st["started"]) >= self.NOTE_EVERY:
            st["noted"] = now
            self._print(f"{stage}: shard {st['shards_done'] + 1}/{st['shards']} running · {self._rates(st)}")

    #: Seconds between two notes printed for one stage (a note per engine call would flood a log).
    NOTE_EVERY = 10.0

    def note(self, stage: str, text: str) -> None:
        st = self.state.get(stage)
        if st is not None and time.perf_counter() - st.get("noted", 0.0) >= self.NOTE_EVERY:
            st["noted"] = time.perf_counter()
            self._print(f"{stage}: {text}")

    def shard_done(self, stage: str) -> None:
        if stage in self.state:
            st = self.state[stage]
            st["shards_done"] += 1
            self._print(f"{stage}: shard {st['shards_done']}/{st['shards']} · {self._rates(st)}")

    def stage_finished(self, stage: str, *, cached: bool) -> None:
        st = self.state.get(stage)
        if cached and st is None:
            if stage not in self.cached:
                self._print(f"{stage}: cached (nothing to do)")
            self.cached.add(stage)
        elif st is not None:
            st["in_flight"] = 0
            self._print(f"{stage}: done · {self._rates(st)}")

    def in_flight(self, stage: str, *, requests: int, peak: int) -> None:
        if stage in self.state:
            self.state[stage]["in_flight"] = requests


def progress_reporter(con: Console | None = None) -> RichReporter | PlainReporter:
    """Live progress bars on a terminal; plain lines otherwise (stderr)."""
    con = con or console(stderr=True)
    return RichReporter(con) if con.is_terminal else PlainReporter(con.file)


def _tokens_text(summary: Any) -> str:
    text = getattr(summary, "tokens_text", None)  # split by stage (synthesis, revision, judges)
    return text() if callable(text) else f"{summary.tokens:,}"


def render_summary(summary: Any, con: Console | None = None) -> None:
    """The end-of-build summary: one row per table, totals, where the data is, what to run next."""
    con = con or console()
    t = Table(title=f"prefmill build: {summary.dataset}", header_style="bold")
    for col in ("table", "version", "rows", "status", "time", "tokens", "errors"):
        t.add_column(col, justify="right" if col in ("rows", "time", "tokens", "errors") else "left")
    for r in summary.tables:
        tokens = r.totals.get("tokens") or r.stats.get("generated_tokens")  # judges: in the stats
        t.add_row(
            r.table,
            r.version,
            f"{r.rows:,}",
            "cached" if r.cached else "built",
            "-" if r.cached else f"{r.seconds:.1f}s",
            f"{int(tokens):,}" if tokens else "-",
            str(r.totals.get("errors", 0)),
        )
    con.print(t)
    cost = _cost(summary)
    con.print(
        f"time {summary.seconds:.1f}s · tokens generated {_tokens_text(summary)} · cost {cost} · "
        f"ref '{summary.ref}'"
        + (f" · stopped after {summary.stopped_after}" if summary.stopped_after else "")
    )
    con.print(f"data: {summary.root}/{summary.dataset}")
    for line in _synthesis_lines(summary):
        con.print(line)
    for r in summary.tables:  # an output with no rows says why
        if r.rows == 0 and r.stats.get("empty_reason"):
            con.print(f"[yellow]{r.table}: 0 rows[/yellow] -- {escape(str(r.stats['empty_reason']))}")
    for line in _concurrency_lines(summary):
        con.print(line)
    con.print("next: " + ", ".join(f"`{c}`" for c in next_commands(summary)))


def next_commands(summary: Any) -> list[str]:
    """What to run after a build: its tables, a few rows of its output, SQL, the report."""
    at = {"root": summary.root, "dataset": summary.dataset}
    built = [r.table for r in summary.tables]
    output = next((t for t in ("pairs", "points", "lists") if t in built), built[-1] if built else "pairs")
    return [
        command("tables", **at),
        command("show", output, "--limit", "5", **at),
        command("sql", "SELECT ...", **at),
        command("report", "--out", "report.html", **at),
    ]


def _cost(summary: Any) -> str:
    """The run's cost: priced, not priced (an API engine with no recipe price), or a local engine's."""
    unpriced = getattr(summary, "unpriced", [])
    missing = f"no price for {', '.join(unpriced)}: set `prices` in the recipe"
    if summary.cost_usd or (getattr(summary, "remote", False) and not unpriced):
        return f"${summary.cost_usd:.4f}" + (f" (+ unknown: {missing})" if unpriced else "")
    if unpriced:
        return f"unknown ({missing})"
    return "$0 (local engine)"


def _synthesis_lines(summary: Any) -> list[str]:
    """Diversity means and best-of-n acceptance of the candidates version, when it has them."""
    stats = next((r.stats for r in summary.tables if r.table == "candidates"), {})
    lines = []
    n = stats.get("diversity_prompts") or 0
    if n:
        lines.append(
            f"diversity over {n} prompts: distinct-2 {stats.get('distinct_2_sum', 0) / n:.2f} · "
            f"embedding spread {stats.get('spread_sum', 0) / n:.3f} · near-duplicates "
            f"{stats.get('near_duplicates', 0)} · low-diversity prompts "
            f"{stats.get('low_diversity_prompts', 0)}"
        )
    if stats.get("best_of_n_verifiable"):
        lines.append(
            f"best-of-n: {stats.get('best_of_n_accepted_prompts', 0)} of {stats['best_of_n_verifiable']} "
            f"verifiable prompts accepted in {stats.get('best_of_n_samples', 0)} samples"
        )
    return lines


def _concurrency_lines(summary: Any) -> list[str]:
    """The achieved concurrency of each table built through an engine in this process."""
    lines = []
    for r in summary.tables:
        seen = getattr(r, "in_flight", None)
        if seen and not r.cached:
            mean, peak, window = seen
            lines.append(
                f"{r.table}: {mean:,.1f} requests in flight on average (peak {peak:,}), "
                f"up to {window} shard(s) at once"
            )
    return lines
