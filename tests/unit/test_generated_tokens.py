"""What the judges' and revisers' models generate counts in the build summary's "tokens generated",
split by stage, and a revision shard counts its critiques and revisions, not the rows it copies."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
from tables import build

from prefmill.flows.common import TableResult
from prefmill.flows.evaluation import judge
from prefmill.flows.plan import resolve_plan
from prefmill.flows.results import BuildSummary
from prefmill.flows.revision import revise
from prefmill.flows.stage import ShardContext
from prefmill.progress import metered
from prefmill.recipe import parse_recipe
from prefmill.storage import Store
from prefmill.ui import console, render_summary

DS = "ds"
ENGINE = "scripted:echo?words=20"


def _recipe(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    text = (
        f"dataset: {DS}\n"
        "prompts:\n  sources:\n    - kind: file\n      path: p.jsonl\n"
        f'synthesis:\n  engine: "{ENGINE}"\n'
        "evaluation:\n  judges:\n"
        f'    - kind: llm\n      engine: "{ENGINE}"\n      mode: point\n'
        f'    - kind: critique_revise\n      engine: "{ENGINE}"\n'
    )
    return parse_recipe(text, base_dir=tmp_path)


def _sources(store: Store):  # type: ignore[no-untyped-def]
    for table in ("prompts", "candidates"):
        w = store.open_version(DS, table, f"{table}-v")
        w.write_shard(0, build(table, 6))
        w.publish(stage="s", code_version="1", config={})
    return store.manifest(DS, "prompts", "prompts-v"), store.manifest(DS, "candidates", "candidates-v")


def test_judge_and_revision_shards_say_what_their_models_generated(tmp_path: Path) -> None:
    plan = resolve_plan(_recipe(tmp_path))
    store = Store(tmp_path / "data")
    sources = _sources(store)
    assert plan.revision is not None

    out, stats = revise(ShardContext(store, DS, "revision", 0), sources, plan.revision)
    revised = out.filter(pc.equal(out.column("origin"), "revision"))
    with metered() as made:  # the same requests again (deterministic): what the critiques cost too
        revise(ShardContext(store, DS, "revision", 0), sources, plan.revision)
    # critiques and revisions: more than the revisions' own n_tokens, and none of the copied rows'
    assert stats["generated_tokens"] == made.tokens > pc.sum(revised.column("n_tokens")).as_py() > 0

    judgments, stats = judge(ShardContext(store, DS, "evaluation", 0), sources, plan.evaluation)
    assert judgments.num_rows and stats["generated_tokens"] > 0
    with metered() as made:  # the same requests again: deterministic, the same count
        judge(ShardContext(store, DS, "evaluation", 0), sources, plan.evaluation)
    assert made.tokens == stats["generated_tokens"]


def _result(table: str, stage: str, tokens: int, *, cached: bool = False) -> TableResult:
    return TableResult(table, "v", 4, cached, 1.0, "/x", stage=stage, generated={"tokens": tokens})


def test_summary_line_counts_judges_and_revisions_by_stage() -> None:
    only = BuildSummary(DS, "/r", "latest", tables=[_result("candidates", "synthesis", 500)])
    assert only.tokens_text() == "500"
    summary = BuildSummary(
        DS,
        "/r",
        "latest",
        tables=[
            _result("prompts", "prompts", 0),
            _result("candidates", "synthesis", 1000),
            _result("candidates", "revision", 300),
            _result("judgments", "evaluation", 234),
            _result("pairs", "instantiation", 0),
            _result("judgments", "evaluation", 99, cached=True),  # cached: generated nothing now
        ],
    )
    assert summary.tokens == 1534
    assert summary.tokens_by_stage == {"synthesis": 1000, "revision": 300, "judges": 234}
    assert summary.tokens_text() == "1,534 (synthesis 1,000, revision 300, judges 234)"
    con = console()
    with con.capture() as cap:
        render_summary(summary, con)
    assert "tokens generated 1,534 (synthesis 1,000, revision 300, judges 234)" in cap.get()
