"""The section skeleton of the build report: ``Section`` (one part of the page) and ``SectionSpec``
(a section drawn from one aggregate's rows, with the notes shown when it has none)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from prefmill.reports.data import ReportData

Rows = list[dict[str, Any]]
#: What ``draw`` makes of a section's rows: (figure or None, HTML body), or a note to show instead.
Drawn = tuple[go.Figure | None, str] | str


@dataclass
class Section:
    """One part of the page: a chart (``figure``), an HTML fragment, or both; ``note`` explains an
    absent chart (a table the ref lacks, nothing to compare)."""

    key: str
    title: str
    intro: str
    figure: go.Figure | None = None
    body: str = ""
    note: str = ""


def missing_note(data: ReportData, name: str) -> str:
    """The note of a section whose aggregate ``name`` did not run: the tables the ref lacks."""
    tables = data.missing.get(name, [])
    return f"this ref has no {', '.join(tables)} table" + ("s" if len(tables) > 1 else "")


@dataclass(frozen=True)
class SectionSpec:
    """A section drawn from the rows of one aggregate; calling it with the report data makes it."""

    key: str
    title: str
    intro: str
    aggregate: str
    draw: Callable[[ReportData, Rows], Drawn]
    #: note when the aggregate has no rows (None: draw even then)
    empty: str | None = None
    #: HTML shown first in any case, even when the aggregate did not run
    lead: Callable[[ReportData], str] | None = None

    def __call__(self, data: ReportData) -> Section:
        lead = self.lead(data) if self.lead else ""
        if self.aggregate in data.missing:
            return self._note(lead, missing_note(data, self.aggregate))
        rows = data.rows(self.aggregate)
        if self.empty is not None and not rows:
            return self._note(lead, self.empty)
        drawn = self.draw(data, rows)
        if isinstance(drawn, str):
            return self._note(lead, drawn)
        figure, body = drawn
        return Section(self.key, self.title, self.intro, figure=figure, body=lead + body)

    def _note(self, lead: str, note: str) -> Section:
        return Section(self.key, self.title, self.intro, body=lead, note=note)


def col(rows: Rows, key: str) -> list[Any]:
    """The values of ``key`` in ``rows``."""
    return [r[key] for r in rows]
