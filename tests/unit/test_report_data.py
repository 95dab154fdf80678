"""The report's aggregates (src/prefmill/sql/report/*.sql) on hand-made tables with known answers,
and the HTML page built from them (without a browser; tests/integration/test_report_render.py draws
it in Chromium)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from tables import build, judgments_rows, points_rows

from prefmill.cli import run
from prefmill.ids import content_id
from prefmill.reports.data import AGGREGATES, aggregate, collect, read_report_sql
from prefmill.reports.html import render_html
from prefmill.storage import Store
from prefmill.storage.duck import connect
from prefmill.storage.schemas import SCHEMAS


def _con(**tables: pa.Table) -> duckdb.DuckDBPyConnection:
    con = connect()
    for name, table in tables.items():
        con.register(name, table)
    return con


def _judgment(judge: str, candidate: str, score: float | None = None, **over: Any) -> dict[str, Any]:
    row = judgments_rows(1)[0]
    row.update(
        judgment_id=content_id([judge, candidate, over.get("other_candidate_id"), over.get("order")]),
        prompt_id="p",
        candidate_id=candidate,
        other_candidate_id=None,
        judge=judge,
        mode="point",
        order=None,
        score=score,
        prefers_first=None,
        parse_error=None,
    )
    row.update(over)
    return row


def _judgments(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMAS["judgments"])


def _pair(judge: str, first: str, second: str, order: str, p: float, **over: Any) -> dict[str, Any]:
    return _judgment(
        judge, first, None, mode="pair", other_candidate_id=second, order=order, prefers_first=p, **over
    )


def test_every_aggregate_has_its_sql_file() -> None:
    for name in AGGREGATES:
        text = read_report_sql(name)
        assert text.startswith(f"-- {name}:"), name


def test_tokens_per_generator() -> None:
    rows = aggregate(_con(candidates=build("candidates", 6, errors=1)), "tokens").to_pylist()
    # n_tokens: failed row 0, then 10 + i for i = 1..5; prompt_tokens 20 each
    assert rows == [
        {
            "generator": "transformers:tiny-model",
            "candidates": 6,
            "errors": 1,
            "completion_tokens": 11 + 12 + 13 + 14 + 15,
            "prompt_tokens": 120,
            "mean_tokens": 13.0,
            "mean_latency_ms": pytest.approx(12.5 + 3),
        }
    ]


def test_candidates_per_prompt_counts_failed_and_empty_prompts() -> None:
    # 4 prompts; 6 candidates over the first 3 prompts (i % 3), candidate 0 (prompt 0) failed
    con = _con(prompts=build("prompts", 4), candidates=build("candidates", 6, errors=1))
    rows = aggregate(con, "candidates_per_prompt").to_pylist()
    assert rows == [
        {"n_candidates": 0, "n_prompts": 1, "n_failed": 0},  # prompt 3: no candidate at all
        {"n_candidates": 1, "n_prompts": 1, "n_failed": 1},  # prompt 0: one good, one failed
        {"n_candidates": 2, "n_prompts": 2, "n_failed": 0},
    ]


def test_score_histogram_bins_per_judge_and_skips_unusable_verdicts() -> None:
    rows = [_judgment("a", f"c{i}", s) for i, s in enumerate([0.0, 0.25, 0.5, 1.0, 1.0])]
    rows += [_judgment("b", f"c{i}", 7.0) for i in range(3)]  # constant: one bin
    rows += [
        _judgment("a", "bad", None, parse_error="no verdict"),
        _judgment("a", "x", 0.9, parse_error="half a verdict"),
        _judgment("a", "step", 0.3, granularity="step", unit_index=0),
        _pair("a", "c0", "c1", "ab", 0.9),
    ]
    out = aggregate(_con(judgments=_judgments(rows)), "score_histogram", {"bins": 4}).to_pylist()
    got = [(r["judge"], r["criterion"], r["bin"], r["lo"], r["hi"], r["n"]) for r in out]
    assert got == [
        ("a", "overall", 0, 0.0, 0.25, 1),
        ("a", "overall", 1, 0.25, 0.5, 1),
        ("a", "overall", 2, 0.5, 0.75, 1),
        ("a", "overall", 3, 0.75, 1.0, 2),  # the maximum falls in the last bin
        ("b", "overall", 0, 7.0, 7.0, 3),
    ]


def test_margin_histogram() -> None:
    # pairs_rows: margin = 5 - i % 3 -> 5, 4, 3, 5, 4, 3, 5
    out = aggregate(_con(pairs=build("pairs", 7)), "margin_histogram", {"bins": 2}).to_pylist()
    assert [(r["criterion"], r["bin"], r["lo"], r["hi"], r["n"]) for r in out] == [
        ("overall", 0, 3.0, 4.0, 2),
        ("overall", 1, 4.0, 5.0, 5),
    ]


def _spearman(x: list[float], y: list[float]) -> float:
    def ranks(v: list[float]) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(1, len(v) + 1)
        for value in set(v):  # average ranks for ties
            idx = [i for i, w in enumerate(v) if w == value]
            r[idx] = r[idx].mean()
        return r

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def test_length_score_and_its_correlation() -> None:
    cands = build("candidates", 4)
    ids = cands.column("candidate_id").to_pylist()
    lengths = [10, 20, 20, 40]
    scores = [0.1, 0.2, 0.5, 0.3]
    cands = cands.set_column(
        cands.schema.get_field_index("n_tokens"), "n_tokens", pa.array(lengths, pa.int64())
    )
    # two judges on the first candidate: its score is the mean of the two judges' means
    rows = [_judgment("a", cid, s) for cid, s in zip(ids, scores, strict=True)]
    rows += [_judgment("b", ids[0], 0.3)]
    con = _con(candidates=cands, judgments=_judgments(rows))
    expected = [0.2, 0.2, 0.5, 0.3]
    points = aggregate(con, "length_score", {"limit": 10}).to_pylist()
    got = sorted((p["n_tokens"], round(p["score"], 9)) for p in points)
    assert got == sorted(zip(lengths, expected, strict=True))
    assert len(aggregate(con, "length_score", {"limit": 2})) == 2
    (corr,) = aggregate(con, "length_score_corr").to_pylist()
    assert corr["n"] == 4
    assert corr["pearson"] == pytest.approx(float(np.corrcoef(lengths, expected)[0, 1]))
    assert corr["spearman"] == pytest.approx(_spearman(lengths, expected))
    assert corr["mean_tokens"] == pytest.approx(22.5)


def test_judge_agreement_matrix() -> None:
    xs = [1.0, 2.0, 3.0, 4.0]
    rows = [_judgment("a", f"c{i}", x) for i, x in enumerate(xs)]
    rows += [_judgment("b", f"c{i}", 2 * x) for i, x in enumerate(xs)]
    rows += [_judgment("c", f"c{i}", 5 - x) for i, x in enumerate(xs)]
    rows += [_judgment("a", f"c{i}", x * x, criterion="helpfulness") for i, x in enumerate(xs)]
    rows += [_judgment("d", "c9", 1.0)]  # shares no candidate with anyone
    rows += [_judgment("b", "c0", 9.0, parse_error="garbled")]  # ignored
    out = aggregate(_con(judgments=_judgments(rows)), "judge_agreement").to_pylist()
    cells = {(r["rater_a"], r["rater_b"]): r for r in out}
    raters = ("a", "a/helpfulness", "b", "c")
    assert set(cells) == {(a, b) for a in raters for b in raters} | {("d", "d")}
    assert cells[("a", "b")]["n"] == 4
    assert cells[("a", "b")]["pearson"] == pytest.approx(1.0)
    assert cells[("a", "b")]["mean_abs_diff"] == pytest.approx(2.5)
    assert cells[("a", "c")]["pearson"] == pytest.approx(-1.0)
    assert cells[("a", "c")]["spearman"] == pytest.approx(-1.0)
    squares = [x * x for x in xs]
    assert cells[("a", "a/helpfulness")]["pearson"] == pytest.approx(float(np.corrcoef(xs, squares)[0, 1]))
    assert cells[("a", "a/helpfulness")]["spearman"] == pytest.approx(1.0)
    assert cells[("b", "a")]["pearson"] == pytest.approx(cells[("a", "b")]["pearson"])  # symmetric
    assert cells[("d", "d")]["n"] == 1 and cells[("d", "d")]["pearson"] is None  # one point: no r


def test_swap_consistency() -> None:
    rows = [
        # c1/c2: ab prefers c1 (0.9); ba shows c2 first and prefers c1 (prefers_first 0.2): consistent
        _pair("j", "c1", "c2", "ab", 0.9),
        _pair("j", "c2", "c1", "ba", 0.2),
        # c3/c4: the first-shown response wins both times: position bias, inconsistent
        _pair("j", "c3", "c4", "ab", 0.8),
        _pair("j", "c4", "c3", "ba", 0.7),
        # c5/c6: judged in one order only
        _pair("j", "c5", "c6", "ab", 0.3),
        # a 'ba' row that keeps candidate_id as in its 'ab' row (the other convention) still matches
        _pair("k", "c1", "c2", "ab", 0.5),
        _pair("k", "c1", "c2", "ba", 0.5),
        _pair("j", "c7", "c8", "ba", 0.9, parse_error="unparseable"),
        _judgment("j", "c1", 1.0),  # point-wise: not part of this
    ]
    out = aggregate(_con(judgments=_judgments(rows)), "swap_consistency").to_pylist()
    assert out == [
        {
            "judge": "j",
            "criterion": "overall",
            "judgments": 5,
            "swapped_pairs": 2,
            "consistent": 1,
            "consistency": 0.5,
            "first_preferred": pytest.approx(3 / 5),
            "mean_abs_shift": pytest.approx((0.1 + 0.5) / 2),
        },
        {
            "judge": "k",
            "criterion": "overall",
            "judgments": 2,
            "swapped_pairs": 1,
            "consistent": 1,  # a tie in both orders is consistent
            "consistency": 1.0,
            "first_preferred": 0.0,
            "mean_abs_shift": 0.0,
        },
    ]


def test_swap_consistency_without_pair_judgments_is_empty() -> None:
    con = _con(judgments=_judgments([_judgment("a", "c1", 1.0)]))
    assert aggregate(con, "swap_consistency").num_rows == 0


def test_kto_balance() -> None:
    rows = points_rows(5)  # labels: True, False, True, False, True
    rows[1]["label"] = None
    rows.append({**points_rows(1)[0], "point_id": "extra", "criterion": "safety", "label": False})
    out = aggregate(_con(points=pa.Table.from_pylist(rows, schema=SCHEMAS["points"])), "kto_balance")
    assert out.to_pylist() == [
        {"criterion": "overall", "desirable": 3, "undesirable": 1, "unlabelled": 1, "desirable_share": 0.75},
        {"criterion": "safety", "desirable": 0, "undesirable": 1, "unlabelled": 0, "desirable_share": 0.0},
    ]


def test_pairs_sample_is_a_fixed_subset() -> None:
    con = _con(pairs=build("pairs", 10))
    first = aggregate(con, "pairs_sample", {"limit": 3}).column("pair_id").to_pylist()
    assert len(first) == 3 and len(set(first)) == 3
    assert aggregate(con, "pairs_sample", {"limit": 3}).column("pair_id").to_pylist() == first
    assert set(first) <= set(build("pairs", 10).column("pair_id").to_pylist())


# -- collect and the page -----------------------------------------------------------------------


def _store(root: Path, *, with_pair_judgments: bool, stop_after_judgments: bool = False) -> Store:
    store = Store(root)
    common: dict[str, Any] = {"code_version": "1", "config": {}}
    cands = build("candidates", 6, errors=1)
    ids = cands.column("candidate_id").to_pylist()
    judged = [_judgment("heuristic", cid, 0.1 * i) for i, cid in enumerate(ids[1:])]
    judged += [_judgment("verifier", cid, float(i % 2)) for i, cid in enumerate(ids[1:])]
    if with_pair_judgments:
        judged += [_pair("llm", ids[1], ids[2], "ab", 0.8), _pair("llm", ids[2], ids[1], "ba", 0.3)]
    versions = {
        "prompts": store.write_version("demo", "prompts", build("prompts", 3), stage="prompts", **common),
        "candidates": store.write_version("demo", "candidates", cands, stage="synthesis", **common),
        "judgments": store.write_version(
            "demo", "judgments", _judgments(judged), stage="evaluation", **common
        ),
    }
    if not stop_after_judgments:
        pairs = build("pairs", 4)
        prompt = pairs.column("prompt").to_pylist()
        prompt[0] = "<script>alert('x')</script> & </script>"  # must be shown as text, not run
        pairs = pairs.set_column(pairs.schema.get_field_index("prompt"), "prompt", pa.array(prompt))
        versions["pairs"] = store.write_version("demo", "pairs", pairs, stage="instantiation", **common)
        versions["points"] = store.write_version(
            "demo", "points", build("points", 4), stage="instantiation", **common
        )
    store.write_ref("demo", "latest", {t: m.version for t, m in versions.items()})
    return store


def _figures(page: str) -> dict[str, Any]:
    import json

    match = re.search(r'<script type="application/json" id="prefmill-figures">(.*?)</script>', page, re.S)
    assert match
    return json.loads(match.group(1))


def test_collect_and_page(tmp_path: Path) -> None:
    store = _store(tmp_path / "data", with_pair_judgments=True)
    data = collect(store, "demo")
    assert [v["table"] for v in data.versions] == ["prompts", "candidates", "judgments", "pairs", "points"]
    assert data.versions[1]["errors"] == 1 and data.tokens == 65
    assert not data.missing
    page = render_html(data)
    figures = _figures(page)
    assert set(figures) == {
        "chart-stage-sizes",
        "chart-tokens",
        "chart-funnel",
        "chart-candidates-per-prompt",
        "chart-scores",
        "chart-margins",
        "chart-length-score",
        "chart-length-delta",
        "chart-judge-agreement",
        "chart-swap-consistency",
        "chart-kto-balance",
    }
    for key in figures:
        assert f'<div class="chart" id="{key}"></div>' in page
    heat = figures["chart-judge-agreement"]["data"][0]
    assert heat["type"] == "heatmap" and heat["x"] == ["heuristic", "verifier"]
    swap = figures["chart-swap-consistency"]["data"][0]
    assert swap["x"] == ["llm"] and swap["y"] == [1.0]
    # self-contained: plotly.js is inlined, nothing is loaded from elsewhere
    assert "Plotly.newPlot" in page and len(page) > 3_000_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)
    # text from the tables is escaped
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "no pair-wise judgments" not in page


def test_page_explains_what_is_absent(tmp_path: Path) -> None:
    store = _store(tmp_path / "data", with_pair_judgments=False, stop_after_judgments=True)
    data = collect(store, "demo")
    assert data.missing == {
        "margin_histogram": ["pairs"],
        "kto_balance": ["points"],
        "pairs_sample": ["pairs"],
        "prompts_without_pairs": ["pairs"],
        "length_delta": ["pairs"],
    }
    page = render_html(data)
    notes = dict(re.findall(r'data-note="([a-z-]+)">([^<]*)<', page))
    assert notes == {
        "margins": "this ref has no pairs table",
        "swap-consistency": "no pair-wise judgments in this build",
        "kto-balance": "this ref has no points table",
        "pairs-sample": "this ref has no pairs table",
        "prompts-without-pairs": "this ref has no pairs table",
        "length-delta": "this ref has no pairs table",
    }
    assert "chart-swap-consistency" not in _figures(page)


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    _store(root, with_pair_judgments=False)
    out = tmp_path / "out" / "r.html"
    assert run(["report", "--root", str(root), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert run(["report", "nightly", "--root", str(root), "--out", str(out)]) == 1
    assert "no ref 'nightly' in dataset 'demo' (refs: latest)" in capsys.readouterr().err
    assert run(["report", "--root", str(root), "--out", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_report_does_not_import_prefect_or_torch(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _store(root, with_pair_judgments=False)
    code = (
        "import sys; from prefmill.cli import run; "
        f"rc = run(['report', '--root', {str(root)!r}, '--out', {str(tmp_path / 'r.html')!r}]); "
        "heavy = [m for m in ('prefect', 'torch', 'transformers') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
