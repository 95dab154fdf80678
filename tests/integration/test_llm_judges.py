"""LLM judges on the real embedded model (SmolLM2-135M-Instruct), and in a real build.

The 135M model rarely writes a readable verdict in free text (structured output fixes that, tested
here too): these tests check that whatever it writes becomes a well-formed row (a verdict, or a
parse error with the raw reply kept), that both orders of every pair are judged, that verdicts
reproduce, and that a build with critique-revise and an LLM judge publishes revisions, judgments and
a fidelity report whose thresholds can stop the build before instantiation. Kept tiny (2 prompts x 2
candidates, a handful of new tokens) so they run in about a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from prefmill.cli import run
from prefmill.flows import run_build
from prefmill.recipe import LLMJudge, parse_recipe
from prefmill.storage import Store
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.fidelity import FidelityError
from prefmill.tasks.evaluation.judge import judge_shard

pytestmark = pytest.mark.slow


def _cands() -> pa.Table:
    rows = []
    for p, (question, answers) in enumerate(
        [("What is 2+3?", ["2+3 = 5.", "It is 7."]), ("Name a primary color.", ["Red.", "Bananas."])]
    ):
        for i, answer in enumerate(answers):
            rows.append(
                {
                    "candidate_id": f"c{p}{i}",
                    "prompt_id": f"p{p}",
                    "response": answer,
                    "messages": [{"role": "user", "content": question}],
                    "reference": None,
                    "rubric": None,
                    "error": None,
                }
            )
    schema = pa.schema(
        [
            ("candidate_id", pa.string()),
            ("prompt_id", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(MESSAGE)),
            ("reference", pa.string()),
            ("rubric", pa.string()),
            ("error", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def test_point_pair_and_rubric_judges_on_the_embedded_model() -> None:
    judges = [
        LLMJudge(kind="llm", name="pt", max_new_tokens=12),
        LLMJudge(kind="llm", name="pr", mode="pair", max_new_tokens=12, repair=False),
        LLMJudge(
            kind="llm",
            name="rb",
            mode="rubric",
            max_new_tokens=12,
            repair=False,
            criteria={"helpfulness": "helps", "honesty": "true"},
        ),
    ]
    out = judge_shard(_cands(), judges)
    rows = out.to_pylist()
    by = {name: [r for r in rows if r["judge"] == name] for name in ("pt", "pr", "rb")}
    assert len(by["pt"]) == 4 and len(by["rb"]) == 8
    assert sorted((r["candidate_id"], r["other_candidate_id"], r["order"]) for r in by["pr"]) == [
        ("c00", "c01", "ab"),
        ("c01", "c00", "ba"),
        ("c10", "c11", "ab"),
        ("c11", "c10", "ba"),
    ]
    assert {r["criterion"] for r in by["rb"]} == {"helpfulness", "honesty"}
    for r in rows:
        assert r["kind"] == "llm" and r["raw"]  # the model's reply is kept, parsed or not
        verdict = r["prefers_first"] if r["mode"] == "pair" else r["score"]
        assert (verdict is None) == (r["parse_error"] is not None)
        if verdict is not None:
            assert 0.0 <= verdict <= 1.0
    # every point reply that did not parse was retried once with the repair prompt
    assert all("[repair]" in r["raw"] for r in by["pt"] if r["parse_error"])
    assert len({r["judgment_id"] for r in rows}) == len(rows)
    # greedy decoding with per-request seeds: the same verdicts again
    again = judge_shard(_cands(), judges[1:2])
    assert again.to_pylist() == by["pr"]


RECIPE = """
dataset: judged
seed: 0
shard_size: 2
prompts:
  sources:
    - {kind: arithmetic, n: 2, seed: 3, max_operand: 9}
synthesis:
  engine: transformers:smollm2
  k: 2
  temperature: 0.7
  max_new_tokens: 12
evaluation:
  judges:
    - arithmetic
    - {kind: critique_revise, max_new_tokens: 8}
    - {kind: llm, name: pair-judge, mode: pair, max_new_tokens: 8, repair: false, max_pairs_per_prompt: 2,
       structured_output: false}
THRESHOLDS
instantiation:
  outputs: [pairs]
"""


def test_build_with_revisions_an_llm_judge_and_a_fidelity_gate(tmp_path: Path, prefect_api: None) -> None:
    root = str(tmp_path / "data")
    recipe = parse_recipe(RECIPE.replace("THRESHOLDS", ""), base_dir=tmp_path)
    summary = run_build(recipe, root)
    assert [t.table for t in summary.tables] == [
        "prompts_rejected",
        "prompts",
        "candidates",
        "candidates",
        "judgments",
        "pairs",
    ]
    store = Store(root)
    ref = store.read_ref("judged")
    original, revised = (t for t in summary.tables if t.table == "candidates")
    assert ref.tables["candidates"] == revised.version != original.version
    cands = store.read("judged", "candidates").to_pylist()
    originals = [c for c in cands if c["origin"] == "online"]
    revisions = [c for c in cands if c["origin"] == "revision"]
    assert len(originals) == 4 and len(revisions) == 4
    assert sorted(r["parent_id"] for r in revisions) == sorted(c["candidate_id"] for c in originals)
    assert all(c["parent_id"] is None for c in originals)
    assert all("critique" in json.loads(r["sampling"]) for r in revisions)
    revised_m = store.manifest("judged", "candidates", revised.version)
    assert {(p.table, p.version) for p in revised_m.parents} >= {("candidates", original.version)}

    judgments = store.read("judged", "judgments").to_pylist()
    pair_rows = [j for j in judgments if j["judge"] == "pair-judge"]
    assert len(pair_rows) == 2 * 2 * 2  # 2 prompts x 2 pairs x 2 orders
    judged = {j["candidate_id"] for j in judgments} | {j["other_candidate_id"] for j in pair_rows}
    assert judged & {r["candidate_id"] for r in revisions}  # revisions are judged like any candidate

    m = store.manifest("judged", "judgments", ref.tables["judgments"])
    report = m.stats["fidelity"]
    pair_report = report["judges"]["pair-judge"]
    assert pair_report["rows"] == 8
    rate = pair_report["parse_failure_rate"]
    assert rate == sum(j["parse_error"] is not None for j in pair_rows) / 8
    assert report["judges"]["arithmetic-verifier"]["parse_failure_rate"] == 0.0
    assert any("pair-judge" in w and "smollm" in w for w in report["warnings"])  # judge = policy family

    assert run(["report", "fidelity", "--root", root, "--format", "json"]) == 0
    assert run(["report", "fidelity", "latest", "--root", root]) == 0

    # Without structured output the 135M judge fails to write verdicts; a threshold on that stops the
    # next build before instantiation (everything before is cached: no model call) and leaves the
    # ref where it was.
    assert rate > 0
    strict = parse_recipe(
        RECIPE.replace("THRESHOLDS", "  fidelity: {max_parse_failure_rate: 0.0}"), base_dir=tmp_path
    )
    with pytest.raises(FidelityError) as err:
        run_build(strict, root, ref="strict")
    assert (
        f"judge 'pair-judge' fails a fidelity check: parse failure rate {rate:.3f} > "
        "evaluation.fidelity.max_parse_failure_rate 0.0" in str(err.value)
    )
    assert "strict" not in store.refs("judged")


def test_structured_output_makes_the_small_judge_readable() -> None:
    """The same point judge with and without structured output on the embedded model: free text
    mostly fails to parse; constrained to the verdict's JSON schema, every reply parses in range."""
    free = LLMJudge(kind="llm", name="free", max_new_tokens=40, repair=False, structured_output=False)
    constrained = free.model_copy(update={"name": "json", "structured_output": True})
    rows = judge_shard(_cands(), [free, constrained]).to_pylist()
    by = {name: [r for r in rows if r["judge"] == name] for name in ("free", "json")}
    assert len(by["free"]) == len(by["json"]) == 4
    assert all(r["parse_error"] is None and 0.0 <= r["score"] <= 1.0 for r in by["json"])
    # each reply is the schema's JSON, whole or cut off in its rationale by max_new_tokens
    assert all(r["raw"].startswith('{"score":') for r in by["json"])
    assert sum(r["parse_error"] is not None for r in by["free"]) >= 2
