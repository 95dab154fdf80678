"""The sections of the build report, each drawn from one aggregate of ``prefmill.reports.data``.

Every section but the stage sizes and the warnings is a ``SectionSpec`` (``reports/spec.py``): which
aggregate it reads, the note shown when that aggregate is empty, and a ``draw`` function from its rows
to a figure and an HTML body. The spec does the rest the same way for all of them: the ref lacks the
aggregate's tables -> a note naming them; no rows -> the empty note; else the drawing (or the note
``draw`` returns instead). The sections that explain the data (warnings, funnel, prompts without a
pair, truncation, chosen-minus-rejected length) live in ``reports/explain.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from prefmill.reports import explain
from prefmill.reports.data import ReportData
from prefmill.reports.markup import COLORS, clip, esc, layout, num, size, table
from prefmill.reports.spec import Drawn, Rows, Section, SectionSpec, missing_note
from prefmill.reports.spec import col as _col

__all__ = ["SECTIONS", "Section", "SectionSpec", "missing_note"]

# -- stage sizes (from the ref's versions, not from an aggregate) -------------------------------


def stage_sizes(data: ReportData) -> Section:
    v = data.versions
    names = _col(v, "table")
    fig = go.Figure(
        [
            go.Bar(name="rows", x=names, y=_col(v, "rows"), marker_color=COLORS[0]),
            go.Bar(name="error rows", x=names, y=_col(v, "errors"), marker_color=COLORS[3]),
        ]
    )
    layout(fig, barmode="group", yaxis_title="rows")
    rows = [
        [
            f"<b>{esc(r['table'])}</b>",
            f"<code>{esc(r['version'])}</code>",
            esc(r["stage"]),
            num(r["rows"]),
            num(r["errors"]),
            num(r["tokens"]) if r["tokens"] else "–",
            f"${r['cost_usd']:.4f}" if r["cost_usd"] else "–",
            num(r["shards"]),
            size(r["bytes"]),
            esc(r["created_at"][:19].replace("T", " ")),
        ]
        for r in v
    ]
    body = table(
        ["table", "version", "stage", "rows", "errors", "tokens", "cost", "files", "size", "created"], rows
    )
    empty = [r for r in v if r["rows"] == 0 and r.get("empty_reason")]
    if empty:  # an output with no rows says why
        items = "".join(
            f"<li><b>{esc(r['table'])}</b>: 0 rows -- {esc(r['empty_reason'])}</li>" for r in empty
        )
        body += f'<ul class="empty-outputs">{items}</ul>'
    return Section(
        "stage-sizes",
        "Stage sizes",
        "Rows of each table version the ref points at; error rows (failed generations, unparseable "
        "verdicts) stay in their tables as data and are left out downstream.",
        figure=fig,
        body=body,
    )


# -- drawings of the aggregates -----------------------------------------------------------------


def _token_summary(data: ReportData) -> str:
    cost = f"${data.cost_usd:.4f}" if data.cost_usd else "$0 (local engine, or no usage reported)"
    return f"<p>tokens generated: <b>{data.tokens:,}</b> · cost: <b>{cost}</b></p>"


def _draw_tokens(data: ReportData, rows: Rows) -> Drawn:
    gens = _col(rows, "generator")
    fig = go.Figure(
        [
            go.Bar(
                name="completion tokens",
                x=gens,
                y=_col(rows, "completion_tokens"),
                marker_color=COLORS[0],
            ),
            go.Bar(name="prompt tokens", x=gens, y=_col(rows, "prompt_tokens"), marker_color=COLORS[1]),
        ]
    )
    layout(fig, barmode="stack", yaxis_title="tokens")
    body = table(
        ["generator", "candidates", "errors", "completion tokens", "prompt tokens", "mean length", "latency"],
        [
            [
                esc(r["generator"]),
                num(r["candidates"]),
                num(r["errors"]),
                num(r["completion_tokens"]),
                num(r["prompt_tokens"]),
                num(r["mean_tokens"]),
                f"{num(r['mean_latency_ms'])} ms",
            ]
            for r in rows
        ],
    )
    return fig, body


def _draw_candidates(data: ReportData, rows: Rows) -> Drawn:
    if len(rows) == 1:  # every prompt got the same count: a number, not a one-bar chart
        r = rows[0]
        failed = f" ({num(r['n_failed'])} failed rows besides)" if r["n_failed"] else ""
        return None, (
            f'<p class="number" data-number="candidates-per-prompt">every prompt ({num(r["n_prompts"])}) '
            f"got <b>{num(r['n_candidates'])}</b> usable candidates{failed}</p>"
        )
    fig = go.Figure(
        go.Bar(
            x=_col(rows, "n_candidates"),
            y=_col(rows, "n_prompts"),
            marker_color=COLORS[0],
            customdata=_col(rows, "n_failed"),
            hovertemplate="%{x} candidates: %{y} prompts (%{customdata} failed rows)<extra></extra>",
        )
    )
    layout(fig, xaxis_title="usable candidates of a prompt", yaxis_title="prompts", xaxis_dtick=1)
    return fig, ""


def _histograms(keys: list[str], x_title: str) -> Callable[[ReportData, Rows], Drawn]:
    """Draws one small histogram per group (rows with the same ``keys`` values) of pre-binned rows."""

    def draw(data: ReportData, rows: Rows) -> Drawn:
        groups: dict[str, Rows] = {}
        for r in rows:
            label = " / ".join(str(r[k]) for k in keys if r[k] not in (None, "overall")) or "overall"
            groups.setdefault(label, []).append(r)
        cols = min(3, len(groups))
        nrows = math.ceil(len(groups) / cols)
        fig = make_subplots(rows=nrows, cols=cols, subplot_titles=list(groups), horizontal_spacing=0.08)
        for i, (_label, bins) in enumerate(groups.items()):
            span = max(b["hi"] for b in bins) - min(b["lo"] for b in bins)
            fig.add_trace(
                go.Bar(
                    x=[(b["lo"] + b["hi"]) / 2 for b in bins],
                    y=_col(bins, "n"),
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
        return layout(fig, height=300 * nrows, bargap=0.05), ""

    return draw


def _draw_length_score(data: ReportData, points: Rows) -> Drawn:
    by_criterion: dict[str, Rows] = {}
    for p in points:
        by_criterion.setdefault(p["criterion"], []).append(p)
    fig = go.Figure(
        [
            go.Scatter(
                name=criterion,
                x=_col(pts, "n_tokens"),
                y=_col(pts, "score"),
                mode="markers",
                marker={"color": COLORS[i % len(COLORS)], "opacity": 0.6, "size": 7},
                text=_col(pts, "candidate_id"),
                hovertemplate="%{text}: %{x} tokens, score %{y:.3g}<extra></extra>",
            )
            for i, (criterion, pts) in enumerate(by_criterion.items())
        ]
    )
    layout(fig, xaxis_title="response tokens", yaxis_title="score (mean over judges)")
    body = table(
        ["criterion", "candidates", "Pearson r", "Spearman ρ", "mean tokens", "mean score"],
        [
            [
                esc(r["criterion"]),
                num(r["n"]),
                num(r["pearson"]),
                num(r["spearman"]),
                num(r["mean_tokens"]),
                num(r["mean_score"]),
            ]
            for r in data.rows("length_score_corr")
        ],
    )
    return fig, body


def _draw_agreement(data: ReportData, rows: Rows) -> Drawn:
    raters = sorted({r["rater_a"] for r in rows})
    if len(raters) < 2:
        return f"{len(raters)} judge(s) gave point-wise scores: nothing to compare"
    cells = {(r["rater_a"], r["rater_b"]): r for r in rows}
    if not any(a != b for a, b in cells):
        return f"the judges ({', '.join(raters)}) never scored the same candidate: nothing to compare"
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
    layout(fig, height=max(320, 80 * len(raters) + 120), yaxis_autorange="reversed")
    body = table(
        ["judge A", "judge B", "shared candidates", "Pearson r", "Spearman ρ", "mean |A − B|"],
        [
            [
                esc(r["rater_a"]),
                esc(r["rater_b"]),
                num(r["n"]),
                num(r["pearson"]),
                num(r["spearman"]),
                num(r["mean_abs_diff"]),
            ]
            for r in rows
            if r["rater_a"] < r["rater_b"]
        ],
    )
    return fig, body


def _draw_swap(data: ReportData, rows: Rows) -> Drawn:
    labels = [r["judge"] if r["criterion"] == "overall" else f"{r['judge']}/{r['criterion']}" for r in rows]
    fig = go.Figure(
        [
            go.Bar(name="consistency", x=labels, y=_col(rows, "consistency"), marker_color=COLORS[2]),
            go.Bar(
                name="prefers first shown",
                x=labels,
                y=_col(rows, "first_preferred"),
                marker_color=COLORS[1],
            ),
        ]
    )
    layout(fig, barmode="group", yaxis_range=[0, 1], yaxis_title="share")
    body = table(
        ["judge", "judgments", "swapped pairs", "consistent", "consistency", "prefers first", "mean shift"],
        [
            [
                esc(label),
                num(r["judgments"]),
                num(r["swapped_pairs"]),
                num(r["consistent"]),
                num(r["consistency"]),
                num(r["first_preferred"]),
                num(r["mean_abs_shift"]),
            ]
            for label, r in zip(labels, rows, strict=True)
        ],
    )
    return fig, body


def _draw_kto(data: ReportData, rows: Rows) -> Drawn:
    crit = _col(rows, "criterion")
    fig = go.Figure(
        [
            go.Bar(name="desirable", x=crit, y=_col(rows, "desirable"), marker_color=COLORS[2]),
            go.Bar(name="undesirable", x=crit, y=_col(rows, "undesirable"), marker_color=COLORS[3]),
        ]
    )
    layout(fig, barmode="stack", yaxis_title="points")
    shares = ", ".join(
        f"{esc(r['criterion'])}: {r['desirable_share']:.0%} desirable"
        for r in rows
        if r["desirable_share"] is not None
    )
    return fig, f"<p>{shares}</p>" if shares else ""


def _draw_pairs(data: ReportData, rows: Rows) -> Drawn:
    cards = "".join(
        '<div class="pair">'
        f'<div class="prompt"><span class="tag">prompt</span> <code>{esc(r["pair_id"])}</code> · '
        f"{esc(r['criterion'])} · margin {num(r['margin'])}<pre>{clip(r['prompt'])}</pre></div>"
        '<div class="side chosen"><span class="tag">chosen</span> score '
        f"{num(r['chosen_score'])}<pre>{clip(r['chosen'])}</pre></div>"
        '<div class="side rejected"><span class="tag">rejected</span> score '
        f"{num(r['rejected_score'])}<pre>{clip(r['rejected'])}</pre></div>"
        "</div>"
        for r in rows
    )
    return None, cards


# -- the sections, in page order ----------------------------------------------------------------

SECTIONS: tuple[Callable[[ReportData], Section], ...] = (
    explain.warnings,
    stage_sizes,
    SectionSpec(
        "tokens",
        "Tokens and cost",
        "Tokens generated per generator (engine and model), and what the build cost.",
        "tokens",
        _draw_tokens,
        lead=_token_summary,
    ),
    explain.FUNNEL,
    SectionSpec(
        "candidates-per-prompt",
        "Candidates per prompt",
        "How many usable candidates each prompt got (a prompt needs two for a pair).",
        "candidates_per_prompt",
        _draw_candidates,
    ),
    explain.PROMPTS_WITHOUT_PAIRS,
    explain.TRUNCATION,
    SectionSpec(
        "scores",
        "Score histograms",
        "Point-wise scores of each judge (and criterion), usable verdicts only.",
        "score_histogram",
        _histograms(["judge", "criterion"], "score"),
        empty="no usable point-wise judgments in this build",
    ),
    SectionSpec(
        "margins",
        "Margin histogram",
        "Score gap between chosen and rejected response of each pair, per criterion.",
        "margin_histogram",
        _histograms(["criterion"], "margin"),
        empty="the pairs table is empty",
    ),
    SectionSpec(
        "length-score",
        "Length vs score",
        "Response length against score: a strong correlation hints that a judge rewards length.",
        "length_score",
        _draw_length_score,
        empty="no candidate has a usable score",
    ),
    explain.LENGTH_DELTA,
    SectionSpec(
        "judge-agreement",
        "Judge agreement",
        "Pearson correlation of the per-candidate scores of each pair of judges (judge/criterion), "
        "over the candidates both scored; the cell text is the number of shared candidates.",
        "judge_agreement",
        _draw_agreement,
    ),
    SectionSpec(
        "swap-consistency",
        "Swap consistency",
        "Pair-wise judges see each pair in both orders (ab and ba): consistency is the share of pairs "
        "whose two verdicts prefer the same response; 'prefers first shown' near 0.5 means no position bias.",
        "swap_consistency",
        _draw_swap,
        empty="no pair-wise judgments in this build",
    ),
    SectionSpec(
        "kto-balance",
        "KTO label balance",
        "Desirable vs undesirable labels of the points table (KTO), per criterion.",
        "kto_balance",
        _draw_kto,
        empty="the points table is empty",
    ),
    SectionSpec(
        "pairs-sample",
        "Sample of pairs",
        "A few pairs as a trainer will see them (a fixed sample: the same pairs on every run).",
        "pairs_sample",
        _draw_pairs,
        empty="the pairs table is empty",
    ),
)
