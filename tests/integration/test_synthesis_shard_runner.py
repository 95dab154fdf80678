"""The synthesis shard runner with every strategy at once (scripted engines) and its retry of failed
rows. Near-duplicate marking embeds the responses with the packaged all-MiniLM-L6-v2 model, which is
why this test lives with the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_synthesis_strategies import GOOD, Engine, _jsonl, _prompts

from prefmill.engines.base import GenerationRequest
from prefmill.recipe import DiversityConfig, ResolvedPolicy, VerbalizedConfig
from prefmill.tasks.synthesis.offline import OfflineSpec
from prefmill.tasks.synthesis.run import OfflineImport, ShardPlan, retry_shard, synthesize_shard

pytestmark = pytest.mark.slow  # loads the packaged embedding model


def test_shard_runner_combines_strategies_and_retries_failed_rows(tmp_path: Path) -> None:
    prompts = _prompts("Name a pet.", "Say hi", references=[None, None])
    offline = _jsonl(tmp_path / "o.jsonl", [{"prompt": "Say hi", "response": "Hello there!", "model": "m"}])
    flaky = {"down": True}

    def reply(r: GenerationRequest) -> str | None:
        content = r.messages[-1]["content"]
        if "different possible responses" in content:
            return None if flaky["down"] else GOOD
        return "Hello there!" if "hi" in content else "A cat."

    engines = {"scripted:a": Engine("scripted:a", reply), "scripted:judge": Engine("scripted:judge")}
    common = {
        "engine": "scripted:a",
        "temperatures": [1.0],
        "top_ps": [1.0],
        "max_new_tokens": 8,
        "batch_size": 4,
    }
    plan = ShardPlan(
        seed=1,
        policies=[
            ResolvedPolicy(name="a", k=2, strategy="sample", **common),
            ResolvedPolicy(name="v", k=1, strategy="verbalized", verbalized=VerbalizedConfig(n=3), **common),
        ],
        offline=[OfflineImport(OfflineSpec(path=str(offline)), data_policy="scripted:judge")],
        policy_engine="scripted:judge",
        diversity=DiversityConfig(near_duplicate_threshold=0.95),
        score_batch_size=4,
    )
    out, stats = synthesize_shard(prompts, plan, lambda spec, _: engines[spec])
    rows = out.to_pylist()
    assert [r["policy"] for r in rows] == ["a"] * 4 + ["v"] * 2 + ["offline:o.jsonl"]
    assert stats["offline_rows"] == 1 and stats["verbalized_calls"] == 2 and stats["requests"] == 6
    offline_row = rows[-1]
    assert offline_row["logprob"] == -12.0 and offline_row["policy_logprob"] == -12.0  # both scored
    assert all(r["policy_logprob"] == -float(len(r["response"])) for r in rows if r["error"] is None)
    # the pet prompt's two identical samples: the second is marked; the offline copy of a sample too
    pet = [r for r in rows if r["prompt_id"] == prompts.column("prompt_id")[0].as_py() and r["error"] is None]
    assert pet[0]["duplicate_of"] is None and pet[1]["duplicate_of"] == pet[0]["candidate_id"]
    hi = [r for r in rows if r["prompt_id"] == prompts.column("prompt_id")[1].as_py() and r["error"] is None]
    assert [r["duplicate_of"] for r in hi] == [None, hi[0]["candidate_id"], hi[0]["candidate_id"]]
    assert stats["near_duplicates"] == 3 and stats["diversity_prompts"] == 2
    assert stats["low_diversity_prompts"] == 2 and stats["distinct_1_sum"] > 0

    flaky["down"] = False
    before = len(engines["scripted:a"].requests)
    fixed, retried = retry_shard(out, prompts, plan, lambda spec, _: engines[spec])
    assert retried == 2 and len(engines["scripted:a"].requests) - before == 2  # only the failed calls
    again = fixed.to_pylist()
    assert [r["policy"] for r in again] == ["a"] * 4 + ["v"] * 6 + ["offline:o.jsonl"]
    assert all(r["error"] is None for r in again)
    assert [r["stated_probability"] for r in again[4:7]] == [0.5, 0.3, None]
    assert again[:4] == [{**r, "duplicate_of": r["duplicate_of"]} for r in rows[:4]]
    assert all(r["policy_logprob"] is not None for r in again)
