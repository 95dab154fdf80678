"""The session's tiny real build (embedded model, real Prefect flows), then what users see of it:
the progress lines, the Prefect artifacts of every stage read back through the Prefect client, and
the HTML report drawn in headless Chromium with the network cut off."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import dump_dom, screenshot
from tinybuild import TinyBuild

from prefmill.cli import run
from prefmill.flows import BuildSummary
from prefmill.storage import Store

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

DATASET = "tiny"


@pytest.fixture(scope="module")
def built(tiny_build: TinyBuild) -> tuple[Path, BuildSummary, str]:
    """The session's shared tiny build (tests/integration/conftest.py): this module only reads it."""
    assert tiny_build.dataset == DATASET
    return tiny_build.folder, tiny_build.summary, tiny_build.progress


def test_progress_lines(built: tuple[Path, BuildSummary, str]) -> None:
    _, _, text = built
    lines = text.splitlines()
    assert "synthesis: 2 shard(s), 12 samples to do" in lines
    shard_lines = [line for line in lines if re.match(r"synthesis: shard \d+/\d+ · ", line)]
    running = [line for line in lines if line.startswith("synthesis: shard ") and " running · " in line]
    for line in running:  # a slow shard says where it is between shard lines, with an ETA
        assert re.match(r"synthesis: shard [12]/2 running · \d+/12 samples · .* · ETA \d+[smh]", line), line
    assert [line.split(" · ")[0] for line in shard_lines] == ["synthesis: shard 1/2", "synthesis: shard 2/2"]
    assert shard_lines[-1].split(" · ")[1] == "12/12 samples"
    assert re.search(r" · [\d.,]+ tok/s · ", shard_lines[-1])
    assert re.search(r"^evaluation: shard 2/2 · 12/12 candidates", text, re.M)
    assert "instantiation: done · 3/3 tables" in text


def _artifacts() -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=f"prefmill-{DATASET}-"))
        )
        flows = {
            a.flow_run_id: client.read_flow(client.read_flow_run(a.flow_run_id).flow_id).name for a in found
        }
    return [(a, flows[a.flow_run_id]) for a in found]


def test_every_stage_publishes_artifacts(built: tuple[Path, BuildSummary, str]) -> None:
    folder, summary, _ = built
    store = Store(folder / "data")
    # other builds of the same dataset in this session publish under the same keys: keep this build's
    # flow runs (the build's own and each stage's, as its manifests record them)
    runs = {summary.flow_run_id} | {
        store.manifest(DATASET, table, summary.version(table)).flow_run_id
        for table in ("prompts", "candidates", "judgments", "pairs")
    }
    found = [(a, flow) for a, flow in _artifacts() if str(a.flow_run_id) in runs]
    by_key = {a.key: (a, flow) for a, flow in found}
    for stage, tables in {
        "prompts": ["prompts_rejected", "prompts"],
        "synthesis": ["candidates"],
        "evaluation": ["judgments"],
        "instantiation": ["pairs", "points", "lists"],
        "build": ["prompts_rejected", "prompts", "candidates", "judgments", "pairs", "points", "lists"],
    }.items():
        rows_artifact, flow = by_key[f"prefmill-{DATASET}-{stage}-rows"]
        assert rows_artifact.type == "table" and flow == f"prefmill-{stage}"
        rows = rows_artifact.data if isinstance(rows_artifact.data, list) else json.loads(rows_artifact.data)
        assert [r["table"] for r in rows] == tables
        for r in rows:
            m = store.manifest(DATASET, r["table"], r["version"])
            assert r["version"] == summary.version(r["table"])
            assert (r["rows"], r["errors"], r["tokens"]) == (
                m.rows,
                int(m.totals.get("errors", 0)),
                int(m.totals.get("tokens", 0)),
            )
            assert r["status"] == "built"
        md, md_flow = by_key[f"prefmill-{DATASET}-{stage}-summary"]
        assert md.type == "markdown" and md_flow == flow and md.flow_run_id == rows_artifact.flow_run_id
        for r in rows:
            assert f"| {r['table']} | `{r['version']}` | {r['rows']:,} |" in md.data
    build_rows, _ = by_key[f"prefmill-{DATASET}-build-rows"]
    assert str(build_rows.flow_run_id) == summary.flow_run_id
    assert "tokens generated" in by_key[f"prefmill-{DATASET}-build-summary"][0].data


def test_report_draws_in_chromium(built: tuple[Path, BuildSummary, str]) -> None:
    from PIL import Image

    folder, _, _ = built
    page = folder / "report.html"
    assert run(["report", "--root", str(folder / "data"), "--out", str(page)]) == 0
    html = page.read_text()
    charts = re.findall(r'<div class="chart" id="(chart-[a-z-]+)"></div>', html)
    # quickstart-like judges never score the same candidate: no heatmap; no pair-wise judges: no swap
    # chart; every prompt got 2 candidates: a number instead of a one-bar chart
    assert charts == [
        "chart-stage-sizes",
        "chart-tokens",
        "chart-funnel",
        "chart-scores",
        "chart-margins",
        "chart-length-score",
        "chart-length-delta",
        "chart-kto-balance",
    ]
    assert "no pair-wise judgments in this build" in html
    # the panels that explain the data
    store = Store(folder / "data")
    pairs = store.manifest(DATASET, "pairs", store.read_ref(DATASET, "latest").tables["pairs"])
    funnel = re.search(r'<table class="funnel">(.*?)</table>', html, re.S)
    assert funnel and "candidates generated</td><td>12<" in funnel.group(1)
    assert f"pairs kept</td><td>{pairs.rows:,}<" in funnel.group(1)
    assert 'data-number="candidates-per-prompt">every prompt (6) got <b>2</b> usable candidates' in html
    assert re.search(r'data-number="truncation">truncation rate: <b>\d+%</b> \(\d+ of 12 usable', html)
    assert re.search(r'data-number="prompts-without-pairs">\d of 6 prompts have no pair', html) or (
        "every prompt has at least one pair" in html
    )
    assert '<section id="warnings"><h2>Warnings</h2>' in html
    assert re.search(r'<section id="length-delta">.*?<td>overall</td><td>\d+</td>', html, re.S)

    dom = dump_dom(page)
    body = re.search(r"<body[^>]*>", dom)
    assert body
    assert f'data-charts-drawn="{len(charts)}"' in body.group(0), body.group(0)
    assert "data-js-errors" not in body.group(0)
    assert 'id="prefmill-errors" class="has-errors"' not in dom
    for chart in charts:  # every chart div now holds plotly's drawing
        start = dom.index(f'<div class="chart js-plotly-plot" id="{chart}">')
        drawn = dom[start : dom.find("</section>", start)]
        assert '<svg class="main-svg"' in drawn, chart
        assert re.search(r'class="(point|trace bars|trace scatter)', drawn), chart

    image = Image.open(screenshot(page, folder / "report.png")).convert("RGB")
    assert image.size == (1280, 2400)
    pixels = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    bar_blue = int((np.abs(pixels - [0x4C, 0x78, 0xA8]).max(axis=1) < 6).sum())
    not_white = int((pixels.sum(axis=1) < 720).sum())
    assert bar_blue > 5000, bar_blue  # the bars of the first charts are drawn
    assert not_white > 0.03 * len(pixels), not_white


def test_a_broken_chart_is_reported_not_blank(built: tuple[Path, BuildSummary, str]) -> None:
    """The page's error banner catches script errors (so the checks above can fail)."""
    folder, _, _ = built
    page = folder / "report.html"
    if not page.exists():
        assert run(["report", "--root", str(folder / "data"), "--out", str(page)]) == 0
    broken = folder / "broken.html"
    html = page.read_text()
    broken.write_text(html.replace("</body>", "<script>null.boom();</script></body>"))
    dom = dump_dom(broken)
    body = re.search(r"<body[^>]*>", dom)
    assert body and 'data-js-errors="1"' in body.group(0)
    assert 'id="prefmill-errors" class="has-errors"' in dom and "null" in dom
