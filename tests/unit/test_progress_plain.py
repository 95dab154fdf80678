"""Progress off a terminal (plain lines) and the text of the Prefect stage artifacts, without Prefect
running (tests/integration/test_report_render.py reads real artifacts back)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from prefmill.flows.artifacts import artifact_key, row_counts, summary_markdown
from prefmill.flows.common import TableResult
from prefmill.ui import PlainReporter, RichReporter, progress_reporter


def test_plain_reporter_lines() -> None:
    out = io.StringIO()
    r = PlainReporter(out)
    r.stage_finished("prompts", cached=True)
    r.stage_started("synthesis", shards=3, done=1, units=8, unit="samples")
    r.advance("synthesis", units=4, tokens=100)
    r.shard_done("synthesis")
    r.advance("synthesis", units=4, tokens=60)
    r.shard_done("synthesis")
    r.stage_finished("synthesis", cached=False)
    r.advance("unknown-stage", units=1)  # ignored, no crash
    lines = out.getvalue().splitlines()
    assert lines[0] == "prompts: cached (nothing to do)"
    assert lines[1] == "synthesis: 3 shard(s) (1 already done), 8 samples to do"
    assert re.fullmatch(
        r"synthesis: shard 2/3 · 4/8 samples · [\d.,]+ samples/s · [\d.,]+ tok/s · [\d.]+s · ETA \d+s",
        lines[2],
    )
    assert lines[3].startswith("synthesis: shard 3/3 · 8/8 samples · ")
    assert lines[4].startswith("synthesis: done · 8/8 samples · ")
    assert len(lines) == 5


def test_plain_reporter_says_where_a_running_shard_is() -> None:
    """Between shard lines, an engine batch's advance prints a line (at most every NOTE_EVERY s)."""
    out = io.StringIO()
    r = PlainReporter(out)
    r.NOTE_EVERY = 0.0
    r.stage_started("synthesis", shards=2, done=0, units=8, unit="samples")
    r.advance("synthesis", units=2)
    r.advance("synthesis", tokens=50)  # tokens only: no line
    r.advance("synthesis", units=2)
    r.shard_done("synthesis")
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 3
    assert re.fullmatch(r"synthesis: shard 1/2 running · 2/8 samples · .* · ETA \d+s", lines[0])
    assert lines[1].startswith("synthesis: shard 1/2 running · 4/8 samples")
    assert lines[2].startswith("synthesis: shard 1/2 · 4/8 samples")
    quiet = PlainReporter(io.StringIO())  # the default: no line per batch on a fast stage
    quiet.stage_started("synthesis", shards=2, done=0, units=8, unit="samples")
    quiet.advance("synthesis", units=2)
    assert len(quiet.file.getvalue().splitlines()) == 1


def test_eta_and_the_rich_bar() -> None:
    from prefmill.progress import Portions, eta

    assert eta(0, 10, 5.0) == "" and eta(10, 10, 5.0) == ""
    assert eta(5, 10, 5.0) == "ETA 5s" and eta(1, 100, 50.0) == "ETA 82m" and eta(1, 4, 3600) == "ETA 3.0h"
    steps: list[int] = []
    p = Portions(steps.append, 10, parts=3)
    p.done(1, 2)  # half of the first of 3 calls: 10 * 0.5 / 3
    p.done(2, 2)
    p.done(3, 3)
    p.done(1, 1)
    p.done(1, 1)  # one call more than announced (a retry): never past the units
    assert steps == [1, 2, 3, 4] and sum(steps) == 10
    r = RichReporter(Console(file=io.StringIO(), force_terminal=True))
    r.stage_started("evaluation", shards=4, done=0, units=40, unit="candidates")
    r.advance("evaluation", units=10)
    fields = r.progress.tasks[r.tasks["evaluation"]].fields
    assert re.fullmatch(r"[\d.,]+/s · ETA \d+s", fields["rate"])


def test_progress_reporter_picks_by_terminal() -> None:
    assert isinstance(progress_reporter(Console(file=io.StringIO())), PlainReporter)
    assert isinstance(progress_reporter(Console(file=io.StringIO(), force_terminal=True)), RichReporter)


def _result(table: str, rows: int, *, cached: bool = False, **totals: float) -> TableResult:
    return TableResult(
        table, f"{table}v1", rows, cached, 1.234, f"/r/ds/{table}/v1", dict(totals), {}, "My_DS"
    )


def test_artifact_rows_and_markdown() -> None:
    results = [_result("candidates", 12, tokens=340, errors=1), _result("pairs", 3, cached=True)]
    assert artifact_key("My_DS", "synthesis", "rows") == "prefmill-my-ds-synthesis-rows"
    assert row_counts(results) == [
        {
            "table": "candidates",
            "version": "candidatesv1",
            "rows": 12,
            "errors": 1,
            "tokens": 340,
            "cost_usd": 0.0,
            "status": "built",
            "seconds": 1.23,
        },
        {
            "table": "pairs",
            "version": "pairsv1",
            "rows": 3,
            "errors": 0,
            "tokens": 0,
            "cost_usd": 0.0,
            "status": "cached",
            "seconds": 1.23,
        },
    ]
    md = summary_markdown("My_DS", "synthesis", results)
    assert md.startswith("## prefmill synthesis: `My_DS`\n")
    assert "| candidates | `candidatesv1` | 12 | 1 | 340 | built | 1.2 s |" in md
    assert "- `prefmill show pairs@pairsv1 --dataset My_DS`" in md
