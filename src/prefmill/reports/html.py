"""The build report as one self-contained HTML page: plotly charts with plotly.js inlined (no CDN, it
opens offline), plus tables of the ref's versions and a sample of pairs.

``render_html(data)`` takes the aggregates of ``prefmill.reports.data.collect`` and returns the page.
Every chart is a plotly figure serialized to JSON in one ``<script type="application/json">``; a small
script draws them with ``Plotly.newPlot`` and then sets ``data-charts-drawn`` on ``<body>`` to the
number drawn. Script errors are caught by a handler installed before anything else runs and listed in
a red banner at the top of the page (``#prefmill-errors``), so a broken chart is visible, not blank.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from prefmill.reports.data import ReportData

COLORS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")
TEXT_LIMIT = 1200  # characters of a prompt / response shown in the pair sample


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


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _esc(value)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _table(columns: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _layout(fig: go.Figure, *, height: int = 360, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        **kwargs,
    )
    return fig


def _missing(data: ReportData, name: str) -> str:
    tables = data.missing.get(name, [])
    return f"this ref has no {', '.join(tables)} table" + ("s" if len(tables) > 1 else "")


# -- sections -------------------------------------------------------------------------------------


def stage_sizes(data: ReportData) -> Section:
    v = data.versions
    names = [r["table"] for r in v]
    fig = go.Figure(
        [
            go.Bar(name="rows", x=names, y=[r["rows"] for r in v], marker_color=COLORS[0]),
            go.Bar(name="error rows", x=names, y=[r["errors"] for r in v], marker_color=COLORS[3]),
        ]
    )
    _layout(fig, barmode="group", yaxis_title="rows")
    rows = [
        [
            f"<b>{_esc(r['table'])}</b>",
            f"<code>{_esc(r['version'])}</code>",
            _esc(r["stage"]),
            _num(r["rows"]),
            _num(r["errors"]),
            _num(r["tokens"]) if r["tokens"] else "–",
            f"${r['cost_usd']:.4f}" if r["cost_usd"] else "–",
            _num(r["shards"]),
            _bytes(r["bytes"]),
            _esc(r["created_at"][:19].replace("T", " ")),
        ]
        for r in v
    ]
    body = _table(
        ["table", "version", "stage", "rows", "errors", "tokens", "cost", "files", "size", "created"], rows
    )
    return Section(
        "stage-sizes",
        "Stage sizes",
        "Rows of each table version the ref points at; error rows (failed generations, unparseable "
        "verdicts) stay in their tables as data and are left out downstream.",
        figure=fig,
        body=body,
    )


def tokens(data: ReportData) -> Section:
    intro = "Tokens generated per generator (engine and model), and what the build cost."
    cost = f"${data.cost_usd:.4f}" if data.cost_usd else "$0 (local engine, or no usage reported)"
    summary = f"<p>tokens generated: <b>{data.tokens:,}</b> · cost: <b>{cost}</b></p>"
    if "tokens" in data.missing:
        return Section("tokens", "Tokens and cost", intro, body=summary, note=_missing(data, "tokens"))
    rows = data.rows("tokens")
    gens = [r["generator"] for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                name="completion tokens",
                x=gens,
                y=[r["completion_tokens"] for r in rows],
                marker_color=COLORS[0],
            ),
            go.Bar(
                name="prompt tokens", x=gens, y=[r["prompt_tokens"] for r in rows], marker_color=COLORS[1]
            ),
        ]
    )
    _layout(fig, barmode="stack", yaxis_title="tokens")
    table = _table(
        ["generator", "candidates", "errors", "completion tokens", "prompt tokens", "mean length", "latency"],
        [
            [
                _esc(r["generator"]),
                _num(r["candidates"]),
                _num(r["errors"]),
                _num(r["completion_tokens"]),
                _num(r["prompt_tokens"]),
                _num(r["mean_tokens"]),
                f"{_num(r['mean_latency_ms'])} ms",
            ]
            for r in rows
        ],
    )
    return Section("tokens", "Tokens and cost", intro, figure=fig, body=summary + table)


def candidates_per_prompt(data: ReportData) -> Section:
    intro = "How many usable candidates each prompt got (a prompt needs two for a pair)."
    if "candidates_per_prompt" in data.missing:
        return Section(
            "candidates-per-prompt",
            "Candidates per prompt",
            intro,
            note=_missing(data, "candidates_per_prompt"),
        )
    rows = data.rows("candidates_per_prompt")
    fig = go.Figure(
        go.Bar(
            x=[r["n_candidates"] for r in rows],
            y=[r["n_prompts"] for r in rows],
            marker_color=COLORS[0],
            customdata=[r["n_failed"] for r in rows],
            hovertemplate="%{x} candidates: %{y} prompts (%{customdata} failed rows)<extra></extra>",
        )
    )
    _layout(fig, xaxis_title="usable candidates of a prompt", yaxis_title="prompts", xaxis_dtick=1)
    return Section("candidates-per-prompt", "Candidates per prompt", intro, figure=fig)


def _histograms(rows: list[dict[str, Any]], keys: list[str], x_title: str) -> go.Figure | None:
    """One small histogram per group (rows with the same ``keys`` values) from pre-binned rows."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = " / ".join(str(r[k]) for k in keys if r[k] not in (None, "overall")) or "overall"
        groups.setdefault(label, []).append(r)
    if not groups:
        return None
    cols = min(3, len(groups))
    nrows = math.ceil(len(groups) / cols)
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=list(groups), horizontal_spacing=0.08)
    for i, (_label, bins) in enumerate(groups.items()):
        span = max(b["hi"] for b in bins) - min(b["lo"] for b in bins)
        fig.add_trace(
            go.Bar(
                x=[(b["lo"] + b["hi"]) / 2 for b in bins],
                y=[b["n"] for b in bins],
                width=[(b["hi"] - b["lo"]) or max(span / 20, 0.05) for b in bins],
                marker_color=COLORS[i % len(COLORS)],
                customdata=[[b["lo"], b["hi"]] for b in bins],
                hovertemplate="[%{customdata[0]:.3g}, %{customdata[1]:.3g}]: %{y}<extra></extra>",
                showlegend=False,
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
        fig.update_xaxes(title_text=x_title, row=i // cols + 1, col=i % cols + 1)
    return _layout(fig, height=300 * nrows, bargap=0.05)


def score_histograms(data: ReportData) -> Section:
    intro = "Point-wise scores of each judge (and criterion), usable verdicts only."
    key, title = "scores", "Score histograms"
    if "score_histogram" in data.missing:
        return Section(key, title, intro, note=_missing(data, "score_histogram"))
    fig = _histograms(data.rows("score_histogram"), ["judge", "criterion"], "score")
    if fig is None:
        return Section(key, title, intro, note="no usable point-wise judgments in this build")
    return Section(key, title, intro, figure=fig)


def margin_histograms(data: ReportData) -> Section:
    intro = "Score gap between chosen and rejected response of each pair, per criterion."
    key, title = "margins", "Margin histogram"
    if "margin_histogram" in data.missing:
        return Section(key, title, intro, note=_missing(data, "margin_histogram"))
    fig = _histograms(data.rows("margin_histogram"), ["criterion"], "margin")
    if fig is None:
        return Section(key, title, intro, note="the pairs table is empty")
    return Section(key, title, intro, figure=fig)


def length_vs_score(data: ReportData) -> Section:
    intro = "Response length against score: a strong correlation hints that a judge rewards length."
    key, title = "length-score", "Length vs score"
    if "length_score" in data.missing:
        return Section(key, title, intro, note=_missing(data, "length_score"))
    points = data.rows("length_score")
    if not points:
        return Section(key, title, intro, note="no candidate has a usable score")
    by_criterion: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        by_criterion.setdefault(p["criterion"], []).append(p)
    fig = go.Figure(
        [
            go.Scatter(
                name=criterion,
                x=[p["n_tokens"] for p in pts],
                y=[p["score"] for p in pts],
                mode="markers",
                marker={"color": COLORS[i % len(COLORS)], "opacity": 0.6, "size": 7},
                text=[p["candidate_id"] for p in pts],
                hovertemplate="%{text}: %{x} tokens, score %{y:.3g}<extra></extra>",
            )
            for i, (criterion, pts) in enumerate(by_criterion.items())
        ]
    )
    _layout(fig, xaxis_title="response tokens", yaxis_title="score (mean over judges)")
    table = _table(
        ["criterion", "candidates", "Pearson r", "Spearman ρ", "mean tokens", "mean score"],
        [
            [
                _esc(r["criterion"]),
                _num(r["n"]),
                _num(r["pearson"]),
                _num(r["spearman"]),
                _num(r["mean_tokens"]),
                _num(r["mean_score"]),
            ]
            for r in data.rows("length_score_corr")
        ],
    )
    return Section(key, title, intro, figure=fig, body=table)


def judge_agreement(data: ReportData) -> Section:
    intro = (
        "Pearson correlation of the per-candidate scores of each pair of judges (judge/criterion), "
        "over the candidates both scored; the cell text is the number of shared candidates."
    )
    key, title = "judge-agreement", "Judge agreement"
    if "judge_agreement" in data.missing:
        return Section(key, title, intro, note=_missing(data, "judge_agreement"))
    rows = data.rows("judge_agreement")
    raters = sorted({r["rater_a"] for r in rows})
    if len(raters) < 2:
        return Section(
            key, title, intro, note=f"{len(raters)} judge(s) gave point-wise scores: nothing to compare"
        )
    cells = {(r["rater_a"], r["rater_b"]): r for r in rows}
    if not any(a != b for a, b in cells):
        return Section(
            key,
            title,
            intro,
            note=f"the judges ({', '.join(raters)}) never scored the same candidate: nothing to compare",
        )
    z = [[(cells.get((a, b)) or {}).get("pearson") for b in raters] for a in raters]
    text = [[str(cells[(a, b)]["n"]) if (a, b) in cells else "" for b in raters] for a in raters]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=raters,
            y=raters,
            text=text,
            texttemplate="%{text}",
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            colorbar={"title": {"text": "r"}},
            hovertemplate="%{y} vs %{x}: r = %{z:.3f} over %{text} candidates<extra></extra>",
        )
    )
    _layout(fig, height=max(320, 80 * len(raters) + 120), yaxis_autorange="reversed")
    table = _table(
        ["judge A", "judge B", "shared candidates", "Pearson r", "Spearman ρ", "mean |A − B|"],
        [
            [
                _esc(r["rater_a"]),
                _esc(r["rater_b"]),
                _num(r["n"]),
                _num(r["pearson"]),
                _num(r["spearman"]),
                _num(r["mean_abs_diff"]),
            ]
            for r in rows
            if r["rater_a"] < r["rater_b"]
        ],
    )
    return Section(key, title, intro, figure=fig, body=table)


def swap_consistency(data: ReportData) -> Section:
    intro = (
        "Pair-wise judges see each pair in both orders (ab and ba): consistency is the share of pairs "
        "whose two verdicts prefer the same response; 'prefers first shown' near 0.5 means no position bias."
    )
    key, title = "swap-consistency", "Swap consistency"
    if "swap_consistency" in data.missing:
        return Section(key, title, intro, note=_missing(data, "swap_consistency"))
    rows = data.rows("swap_consistency")
    if not rows:
        return Section(key, title, intro, note="no pair-wise judgments in this build")
    labels = [r["judge"] if r["criterion"] == "overall" else f"{r['judge']}/{r['criterion']}" for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                name="consistency",
                x=labels,
                y=[r["consistency"] for r in rows],
                marker_color=COLORS[2],
            ),
            go.Bar(
                name="prefers first shown",
                x=labels,
                y=[r["first_preferred"] for r in rows],
                marker_color=COLORS[1],
            ),
        ]
    )
    _layout(fig, barmode="group", yaxis_range=[0, 1], yaxis_title="share")
    table = _table(
        ["judge", "judgments", "swapped pairs", "consistent", "consistency", "prefers first", "mean shift"],
        [
            [
                _esc(label),
                _num(r["judgments"]),
                _num(r["swapped_pairs"]),
                _num(r["consistent"]),
                _num(r["consistency"]),
                _num(r["first_preferred"]),
                _num(r["mean_abs_shift"]),
            ]
            for label, r in zip(labels, rows, strict=True)
        ],
    )
    return Section(key, title, intro, figure=fig, body=table)


def kto_balance(data: ReportData) -> Section:
    intro = "Desirable vs undesirable labels of the points table (KTO), per criterion."
    key, title = "kto-balance", "KTO label balance"
    if "kto_balance" in data.missing:
        return Section(key, title, intro, note=_missing(data, "kto_balance"))
    rows = data.rows("kto_balance")
    if not rows:
        return Section(key, title, intro, note="the points table is empty")
    crit = [r["criterion"] for r in rows]
    fig = go.Figure(
        [
            go.Bar(name="desirable", x=crit, y=[r["desirable"] for r in rows], marker_color=COLORS[2]),
            go.Bar(name="undesirable", x=crit, y=[r["undesirable"] for r in rows], marker_color=COLORS[3]),
        ]
    )
    _layout(fig, barmode="stack", yaxis_title="points")
    shares = ", ".join(
        f"{_esc(r['criterion'])}: {r['desirable_share']:.0%} desirable"
        for r in rows
        if r["desirable_share"] is not None
    )
    return Section(key, title, intro, figure=fig, body=f"<p>{shares}</p>" if shares else "")


def _clip(text: Any) -> str:
    s = "" if text is None else str(text)
    return _esc(s if len(s) <= TEXT_LIMIT else s[:TEXT_LIMIT] + " …")


def pairs_sample(data: ReportData) -> Section:
    intro = "A few pairs as a trainer will see them (a fixed sample: the same pairs on every run)."
    key, title = "pairs-sample", "Sample of pairs"
    if "pairs_sample" in data.missing:
        return Section(key, title, intro, note=_missing(data, "pairs_sample"))
    rows = data.rows("pairs_sample")
    if not rows:
        return Section(key, title, intro, note="the pairs table is empty")
    cards = "".join(
        '<div class="pair">'
        f'<div class="prompt"><span class="tag">prompt</span> <code>{_esc(r["pair_id"])}</code> · '
        f"{_esc(r['criterion'])} · margin {_num(r['margin'])}<pre>{_clip(r['prompt'])}</pre></div>"
        '<div class="side chosen"><span class="tag">chosen</span> score '
        f"{_num(r['chosen_score'])}<pre>{_clip(r['chosen'])}</pre></div>"
        '<div class="side rejected"><span class="tag">rejected</span> score '
        f"{_num(r['rejected_score'])}<pre>{_clip(r['rejected'])}</pre></div>"
        "</div>"
        for r in rows
    )
    return Section(key, title, intro, body=cards)


SECTIONS = (
    stage_sizes,
    tokens,
    candidates_per_prompt,
    score_histograms,
    margin_histograms,
    length_vs_score,
    judge_agreement,
    swap_consistency,
    kto_balance,
    pairs_sample,
)

# -- the page -------------------------------------------------------------------------------------

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
    nav = "".join(f'<a href="#{s.key}">{_esc(s.title)}</a>' for s in parts)
    body = []
    for s in parts:
        chunk = [f'<section id="{s.key}"><h2>{_esc(s.title)}</h2><p class="intro">{_esc(s.intro)}</p>']
        if s.note:
            chunk.append(f'<p class="note" data-note="{s.key}">{_esc(s.note)}</p>')
        if s.figure is not None:
            chunk.append(f'<div class="chart" id="chart-{s.key}"></div>')
        chunk.append(s.body)
        chunk.append("</section>")
        body.append("".join(chunk))
    title = f"prefmill report: {data.dataset} @ {data.ref}"
    meta = (
        f"dataset <b>{_esc(data.dataset)}</b> · ref <b>{_esc(data.ref)}</b> "
        f"(written {_esc(data.ref_created_at[:19].replace('T', ' '))}) · store <code>{_esc(data.root)}</code>"
        f" · report generated {_esc(data.generated_at.replace('T', ' '))}"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style>'
        f"<script>{ERROR_HOOK}</script>"
        f"<script>{get_plotlyjs()}</script></head>\n"
        f'<body data-charts="{len(figures)}">'
        '<div id="prefmill-errors"><b>Some charts failed to draw:</b><ul></ul></div>'
        f"<h1>{_esc(title)}</h1><p class='meta'>{meta}</p><nav>{nav}</nav>\n"
        + "\n".join(body)
        + f'\n<script type="application/json" id="prefmill-figures">{_script_json(figures)}</script>'
        f"<script>{DRAW}</script></body></html>\n"
    )
