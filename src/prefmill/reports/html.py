"""The build report as one self-contained HTML page: plotly charts with plotly.js inlined (no CDN, it
opens offline), plus tables of the ref's versions and a sample of pairs.

``render_html(data)`` takes the aggregates of ``prefmill.reports.data.collect`` and returns the page;
the sections it shows are those of ``prefmill.reports.sections.SECTIONS``.
Every chart is a plotly figure serialized to JSON in one ``<script type="application/json">``; a small
script draws them with ``Plotly.newPlot`` and then sets ``data-charts-drawn`` on ``<body>`` to the
number drawn. Script errors are caught by a handler installed before anything else runs and listed in
a red banner at the top of the page (``#prefmill-errors``), so a broken chart is visible, not blank.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from prefmill.reports.data import ReportData
from prefmill.reports.markup import esc
from prefmill.reports.sections import SECTIONS, Section

__all__ = ["SECTIONS", "Section", "render_html"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 16px 24px 48px; color: #222; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; } .intro { color: #444; } .note { color: #8a6d00; background: #fff8e1;
       padding: 8px 12px; border-radius: 4px; }
nav a { margin-right: 12px; } code { font-size: 90%; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
#prefmill-errors { display: none; background: #fdecea; color: #b00020; padding: 8px 16px; }
#prefmill-errors.has-errors { display: block; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin: 16px 0; padding: 8px;
        border: 1px solid #ddd; border-radius: 6px; }
.pair .prompt { grid-column: 1 / span 2; }
.pair pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0 0; font-size: 13px;
            background: #f7f7f7; padding: 6px; border-radius: 4px; max-height: 320px; overflow: auto; }
.chosen pre { background: #eef7ee; } .rejected pre { background: #fbeeee; }
.warnings { background: #fff4e5; border-left: 4px solid #E45756; padding: 4px 12px; }
.ok { color: #2e7d32; } .number { font-size: 18px; }
.tag { font-weight: bold; text-transform: uppercase; font-size: 12px; color: #555; }
"""

#: Installed before plotly.js: every uncaught error or rejected promise becomes a line in the banner.
ERROR_HOOK = """
window.prefmillErrors = [];
window.prefmillShowErrors = function () {
  var box = document.getElementById('prefmill-errors');
  if (!box || !window.prefmillErrors.length) { return; }
  var list = box.querySelector('ul');
  while (list.childNodes.length < window.prefmillErrors.length) {
    var item = document.createElement('li');
    item.textContent = window.prefmillErrors[list.childNodes.length];
    list.appendChild(item);
  }
  box.className = 'has-errors';
  document.body.setAttribute('data-js-errors', String(window.prefmillErrors.length));
};
window.prefmillReportError = function (message) {
  window.prefmillErrors.push(String(message));
  window.prefmillShowErrors();
};
window.addEventListener('error', function (e) { window.prefmillReportError(e.message || e); });
window.addEventListener('unhandledrejection', function (e) { window.prefmillReportError(e.reason); });
document.addEventListener('DOMContentLoaded', window.prefmillShowErrors);
"""

DRAW = """
(function () {
  var figures = JSON.parse(document.getElementById('prefmill-figures').textContent);
  var config = {displaylogo: false, responsive: true};
  var jobs = Object.keys(figures).map(function (id) {
    var f = figures[id];
    return Plotly.newPlot(id, f.data, f.layout, config);
  });
  Promise.all(jobs).then(function () {
    document.body.setAttribute('data-charts-drawn', String(jobs.length));
  }, function (err) { window.prefmillReportError('chart failed: ' + err); });
})();
"""


def _script_json(payload: dict[str, Any]) -> str:
    """JSON that is safe inside a <script> element (no '</' sequence can close it)."""
    return json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")


def render_html(data: ReportData, sections: Iterable[Section] | None = None) -> str:
    """The whole report page for ``data`` (``sections`` defaults to every section of ``SECTIONS``)."""
    parts = list(sections) if sections is not None else [make(data) for make in SECTIONS]
    figures = {f"chart-{s.key}": json.loads(pio.to_json(s.figure)) for s in parts if s.figure is not None}
    nav = "".join(f'<a href="#{s.key}">{esc(s.title)}</a>' for s in parts)
    body = []
    for s in parts:
        chunk = [f'<section id="{s.key}"><h2>{esc(s.title)}</h2><p class="intro">{esc(s.intro)}</p>']
        if s.note:
            chunk.append(f'<p class="note" data-note="{s.key}">{esc(s.note)}</p>')
        if s.figure is not None:
            chunk.append(f'<div class="chart" id="chart-{s.key}"></div>')
        chunk.append(s.body)
        chunk.append("</section>")
        body.append("".join(chunk))
    title = f"prefmill report: {data.dataset} @ {data.ref}"
    meta = (
        f"dataset <b>{esc(data.dataset)}</b> · ref <b>{esc(data.ref)}</b> "
        f"(written {esc(data.ref_created_at[:19].replace('T', ' '))}) · store <code>{esc(data.root)}</code>"
        f" · report generated {esc(data.generated_at.replace('T', ' '))}"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style>'
        f"<script>{ERROR_HOOK}</script>"
        f"<script>{get_plotlyjs()}</script></head>\n"
        f'<body data-charts="{len(figures)}">'
        '<div id="prefmill-errors"><b>Some charts failed to draw:</b><ul></ul></div>'
        f"<h1>{esc(title)}</h1><p class='meta'>{meta}</p><nav>{nav}</nav>\n"
        + "\n".join(body)
        + f'\n<script type="application/json" id="prefmill-figures">{_script_json(figures)}</script>'
        f"<script>{DRAW}</script></body></html>\n"
    )
