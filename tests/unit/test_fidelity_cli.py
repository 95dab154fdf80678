"""`prefmill report fidelity` on a store written directly (no Prefect): the stored report, a report
computed for a version that has none, and the errors for unknown refs."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from prefmill.cli import run
from prefmill.storage import Parent, Store
from prefmill.tasks.evaluation.llm_judge import judgments_table


def _store(tmp_path: Path, *, with_report: bool) -> tuple[str, str]:
    root = str(tmp_path / "data")
    store = Store(root)
    cands = pa.table(
        {
            "candidate_id": ["a", "b"],
            "prompt_id": ["p", "p"],
            "response": ["short", "a longer answer"],
            "generator": ["transformers:smollm2"] * 2,
            "origin": ["online"] * 2,
            "sampling": ["{}"] * 2,
            "sample_index": pa.array([0, 1], pa.int32()),
            "n_tokens": [2, 4],
            "prompt_tokens": [5, 5],
            "finish_reason": ["stop"] * 2,
            "logprob": [-1.0, -2.0],
            "latency_ms": [1.0, 1.0],
            "error": pa.nulls(2, pa.string()),
        }
    )
    cm = store.write_version("d", "candidates", cands, stage="synthesis", code_version="1", config={})
    rows = [
        {
            "judge": "pj",
            "kind": "llm",
            "mode": "pair",
            "prompt_id": "p",
            "candidate_id": first,
            "other_candidate_id": second,
            "criterion": "overall",
            "order": o,
            "prefers_first": p,
        }
        # a shown first: a preferred; b shown first: b preferred -- the verdict follows the position
        for first, second, o, p in (("a", "b", "ab", 0.9), ("b", "a", "ba", 0.8))
    ] + [
        {
            "judge": "pt",
            "kind": "llm",
            "mode": "point",
            "prompt_id": "p",
            "candidate_id": c,
            "criterion": "overall",
            "score": s,
            "parse_error": e,
        }
        for c, s, e in (("a", 0.3, None), ("b", None, "no score found"))
    ]
    config = {"judges": [{"kind": "llm", "name": "pt", "engine": "transformers:smollm2", "mode": "point"}]}
    writer_config = {**config, "report": with_report}
    jm = store.write_version(
        "d",
        "judgments",
        judgments_table(rows),
        stage="evaluation",
        code_version="1",
        config=writer_config,
        parents=[Parent("candidates", cm.version)],
    )
    if with_report:  # what the evaluation flow stores
        from prefmill.tasks.evaluation.fidelity import fidelity_report

        m = store.manifest("d", "judgments", jm.version)
        m.stats["fidelity"] = fidelity_report(judgments_table(rows), cands)
        m.stats["fidelity"]["warnings"] = ["stored report"]
        path = Path(store.version_path("d", "judgments", jm.version)) / "_manifest.json"
        path.write_text(m.to_json(), encoding="utf-8")
    store.write_ref("d", "latest", {"candidates": cm.version, "judgments": jm.version})
    return root, jm.version


def test_report_fidelity_prints_the_stored_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, version = _store(tmp_path, with_report=True)
    assert run(["report", "fidelity", "--root", root]) == 0
    out = capsys.readouterr().out
    assert f"fidelity of judgments@{version}" in out and "computed now" not in out
    assert "0.000 (0/1)" in out  # pj: its one pair flips with the order
    assert "1.000 (2/2)" in out  # pj: both its verdicts favour the first position, no tie
    assert "0.500" in out  # pt: one parse failure in two rows
    assert "stored report" in out
    assert run(["report", "fidelity", f"judgments@{version[:6]}", "--root", root, "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["judgments"] == version
    assert data["judges"]["pj"]["position_consistency"] == {"pairs": 1, "consistent": 0, "rate": 0.0}
    assert data["judges"]["pj"]["position_bias"]["first_rate"] == 1.0
    assert data["judges"]["pj"]["position_bias"]["ties"] == 0


def test_report_fidelity_computes_a_missing_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = _store(tmp_path, with_report=False)
    assert run(["report", "fidelity", "latest", "--root", root, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["computed_now"] is True
    assert data["judges"]["pt"]["parse_failure_rate"] == 0.5
    assert data["judges"]["pt"]["self_preference"]["family"] == "smollm"
    assert run(["report", "fidelity", "nope", "--root", root]) == 1
    assert (
        "'nope' is neither a ref of dataset 'd' (refs: latest) nor a judgments version"
        in capsys.readouterr().err
    )
    assert run(["report", "fidelity", "--root", root, "--format", "csv"]) == 2
