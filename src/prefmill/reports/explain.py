"""The report sections that explain the data: warnings (empty responses, empty outputs, truncated
replies), the selection funnel, the prompts that got no pair and why, the truncation rate and the
chosen-minus-rejected length. Their numbers come from ``sql/report/*.sql`` and ``data.funnel_steps``."""

from __future__ import annotations

import plotly.graph_objects as go

from prefmill.reports.data import ReportData, funnel_steps
from prefmill.reports.markup import COLORS, esc, layout, num, table
from prefmill.reports.spec import Drawn, Rows, Section, SectionSpec, col

#: Share of a generator's replies cut off by the token limit above which the page warns.
TRUNCATION_WARNING = 0.2

#: What each reason of ``prompts_without_pairs.sql`` means, for the page.
NO_PAIR_REASONS = {
    "no_candidates": "the prompt got no candidate",
    "all_failed": "every candidate failed to generate",
    "one_usable": "a single usable candidate: nothing to compare",
    "not_scored": "fewer than two scored candidates on every criterion (verdicts missing or unparseable)",
    "tied": "tied group: every scored candidate got the same score, so no pair has a margin",
    "not_selected": "scores differ, but the pairing strategies made no pair or selection removed them all",
}


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _ids(ids: list[str] | None) -> str:
    return ", ".join(f"<code>{esc(i)}</code>" for i in ids or [])


def warning_items(data: ReportData) -> list[tuple[str, str]]:
    """``(kind, HTML)`` of every warning: empty responses, outputs with no rows, truncated replies."""
    items = []
    for r in data.rows("empty_responses"):
        items.append(
            (
                "empty-responses",
                f"<b>{num(r['empty'])}</b> of {num(r['usable'])} candidates of <b>{esc(r['generator'])}</b> "
                f"have an empty response (no error), e.g. {_ids(r['examples'])}: they can become pairs",
            )
        )
    for v in data.versions:
        if v["stage"] == "instantiation" and v["rows"] == 0:
            why = f" -- {esc(v['empty_reason'])}" if v.get("empty_reason") else ""
            items.append(("empty-output", f"<b>{esc(v['table'])}</b>: 0 rows{why}"))
    for r in data.rows("truncation"):
        if r["rate"] is not None and r["rate"] > TRUNCATION_WARNING:
            items.append(
                (
                    "truncation",
                    f"{_percent(r['rate'])} of the replies of <b>{esc(r['generator'])}</b> hit the token "
                    "limit (finish_reason = length): raise max_new_tokens, or judges compare cut-off text",
                )
            )
    return items


def warnings(data: ReportData) -> Section:
    items = warning_items(data)
    if items:
        lis = "".join(f'<li data-warning="{kind}">{text}</li>' for kind, text in items)
        body = f'<div class="warnings"><ul>{lis}</ul></div>'
    else:
        body = '<p class="ok">nothing to warn about</p>'
    return Section(
        "warnings",
        "Warnings",
        "What in this build deserves a look before training on it.",
        body=body,
    )


def _draw_funnel(data: ReportData, rows: Rows) -> Drawn:
    steps = funnel_steps(data)
    color = {"candidates": COLORS[0], "pairs": COLORS[2], "removed": COLORS[3]}
    fig = go.Figure(
        go.Bar(
            x=col(steps, "n"),
            y=col(steps, "step"),
            orientation="h",
            marker_color=[color[s["kind"]] for s in steps],
            text=[f"{s['n']:,}" for s in steps],
            textposition="auto",
            hovertemplate="%{y}: %{x}<extra></extra>",
        )
    )
    layout(fig, height=80 + 36 * len(steps), yaxis_autorange="reversed", xaxis_title="rows")
    body = table(["step", "rows"], [[esc(s["step"]), num(s["n"])] for s in steps], cls="funnel")
    if data.version("pairs") is None:
        body += "<p>this ref has no pairs table: the funnel stops at the scored candidates</p>"
    return fig, body


def _no_pair_lead(data: ReportData) -> str:
    rows = data.rows("prompts_without_pairs")
    prompts = data.version("prompts")
    if prompts is None or "prompts_without_pairs" in data.missing:
        return ""
    n = sum(r["n_prompts"] for r in rows)
    total = num(prompts["rows"])
    return f'<p data-number="prompts-without-pairs">{num(n)} of {total} prompts have no pair</p>'


def _draw_no_pair(data: ReportData, rows: Rows) -> Drawn:
    body = table(
        ["reason", "what it means", "prompts", "examples"],
        [
            [
                esc(r["reason"]),
                esc(NO_PAIR_REASONS.get(r["reason"], "")),
                num(r["n_prompts"]),
                _ids(r["examples"]),
            ]
            for r in rows
        ],
        cls="no-pair",
    )
    return None, body


def _draw_truncation(data: ReportData, rows: Rows) -> Drawn:
    usable = sum(r["usable"] for r in rows)
    truncated = sum(r["truncated"] for r in rows)
    share = truncated / usable if usable else None
    lead = (
        f'<p data-number="truncation">truncation rate: <b>{_percent(share)}</b> '
        f"({num(truncated)} of {num(usable)} usable candidates)</p>"
    )
    body = table(
        ["generator", "usable", "truncated", "rate"],
        [[esc(r["generator"]), num(r["usable"]), num(r["truncated"]), _percent(r["rate"])] for r in rows],
    )
    return None, lead + body


def _draw_length_delta(data: ReportData, rows: Rows) -> Drawn:
    crit = col(rows, "criterion")
    fig = go.Figure(
        [
            go.Bar(name="chosen", x=crit, y=col(rows, "chosen_tokens"), marker_color=COLORS[2]),
            go.Bar(name="rejected", x=crit, y=col(rows, "rejected_tokens"), marker_color=COLORS[3]),
        ]
    )
    layout(fig, barmode="group", yaxis_title="mean response tokens")
    body = table(
        ["criterion", "pairs", "chosen tokens", "rejected tokens", "mean Δ", "median Δ", "chosen longer"],
        [
            [
                esc(r["criterion"]),
                num(r["pairs"]),
                num(r["chosen_tokens"]),
                num(r["rejected_tokens"]),
                num(r["mean_delta"]),
                num(r["median_delta"]),
                _percent(r["chosen_longer"]),
            ]
            for r in rows
        ],
    )
    return fig, body


FUNNEL = SectionSpec(
    "funnel",
    "Selection funnel",
    "From candidates to the pairs a trainer gets: usable candidates, scored candidates, the pairs the "
    "strategies made, what each selection filter removed, and the pairs kept.",
    "funnel",
    _draw_funnel,
)
PROMPTS_WITHOUT_PAIRS = SectionSpec(
    "prompts-without-pairs",
    "Prompts without a pair",
    "The prompts that ended with no pair, by the first reason in pipeline order.",
    "prompts_without_pairs",
    _draw_no_pair,
    empty="every prompt has at least one pair",
    lead=_no_pair_lead,
)
TRUNCATION = SectionSpec(
    "truncation",
    "Truncation",
    "Replies cut off by the token limit (finish_reason = length): a judge then compares unfinished text.",
    "truncation",
    _draw_truncation,
    empty="no candidates in this build",
)
LENGTH_DELTA = SectionSpec(
    "length-delta",
    "Chosen vs rejected length",
    "Mean response tokens of the chosen and the rejected side of the pairs: a chosen side that is "
    "always longer teaches the policy to be long.",
    "length_delta",
    _draw_length_delta,
    empty="the pairs table is empty",
)
