"""`prefmill report [REF] --out report.html`: one self-contained HTML page about a build.

Reads the ref's tables with DuckDB (``prefmill.reports.data``), draws them with plotly
(``prefmill.reports.html``) and writes the page atomically. Never imports Prefect or torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefmill.errors import PrefmillError
from prefmill.reports.data import collect
from prefmill.reports.html import render_html
from prefmill.storage import Store


def write_report(
    store: Store, dataset: str, ref: str, out: Path, *, sample_pairs: int = 8, bins: int = 20
) -> Path:
    """Write the report of ``ref`` to ``out`` (a temporary file renamed into place) and return it."""
    if sample_pairs < 0 or bins < 1:
        raise PrefmillError(f"--sample-pairs must be >= 0 and --bins >= 1 (got {sample_pairs}, {bins})")
    data = collect(
        store,
        dataset,
        ref,
        params={
            "pairs_sample": {"limit": sample_pairs},
            "score_histogram": {"bins": bins},
            "margin_histogram": {"bins": bins},
        },
    )
    page = render_html(data)
    out = out.expanduser()
    if out.is_dir():
        raise PrefmillError(f"--out {out} is a directory; give a file name such as {out / 'report.html'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        reason = exc.strerror or exc
        raise PrefmillError(f"cannot write the report to {out}: {reason}; pass another --out PATH") from exc
    return out
