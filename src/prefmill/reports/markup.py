"""Small HTML and plotly helpers of the report: escaping, number formats, tables, the figure layout."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

import plotly.graph_objects as go

COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")
TEXT_LIMIT = 1200  # characters of a prompt / response shown in the pair sample


def esc(value: Any) -> str:
    """``value`` as escaped HTML text (None is empty)."""
    return html.escape("" if value is None else str(value))


def num(value: Any, digits: int = 3) -> str:
    """A number as table text: ``digits`` significant digits, thousands separators, ``–`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return esc(value)


def size(n: float) -> str:
    """A byte count as text (B, KB, MB, ...)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def clip(text: Any) -> str:
    """Escaped text cut to ``TEXT_LIMIT`` characters."""
    s = "" if text is None else str(text)
    return esc(s if len(s) <= TEXT_LIMIT else s[:TEXT_LIMIT] + " …")


def table(columns: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    """An HTML table; ``columns`` are escaped here, the cells must already be HTML."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def layout(fig: go.Figure, *, height: int = 360, **kwargs: Any) -> go.Figure:
    """The report's common figure layout."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        **kwargs,
    )
    return fig
