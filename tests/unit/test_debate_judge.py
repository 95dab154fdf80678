"""The `debate` judge kind: a recipe names it, judge_shard runs it, its template enters the version."""

from __future__ import annotations

import pyarrow as pa

from prefmill.engines.base import Generation, GenerationRequest
from prefmill.flows.evaluation import evaluation_config
from prefmill.recipe import parse_recipe
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.judge import judge_shard
from prefmill.tasks.evaluation.judges.debate import DebateJudge, run


class PrefersGood:
    name = "scripted:debate"
    model = "scripted"

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        out = []
        for r in requests:
            a = r.messages[0]["content"].split("[Response A]")[1].split("[End of response A]")[0]
            better = "A" if "good" in a else "B"
            out.append(
                Generation(
                    f'{{"better": "{better}", "strength": 3, "rationale": "x"}}', 5, 10, "stop", -1.0, 1.0
                )
            )
        return out


def _shard() -> pa.Table:
    msgs = [[{"role": "user", "content": "hi"}]] * 2
    return pa.table(
        {
            "candidate_id": ["c1", "c2"],
            "prompt_id": ["p", "p"],
            "response": ["a good answer", "meh"],
            "messages": pa.array(msgs, pa.list_(MESSAGE)),
        }
    )


def test_debate_judges_each_pair_once() -> None:
    rows = run(DebateJudge(kind="debate"), _shard(), engine=PrefersGood()).to_pylist()
    assert [(r["candidate_id"], r["other_candidate_id"], r["prefers_first"]) for r in rows] == [
        ("c1", "c2", 1.0)
    ]
    assert rows[0]["judge"] == "debate-judge" and rows[0]["kind"] == "llm"


def test_a_recipe_names_it_and_its_template_enters_the_version(monkeypatch) -> None:
    recipe = parse_recipe(
        "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 1}]\nevaluation:\n  judges: [debate]\n"
    )
    (judge,) = recipe.evaluation.judges
    assert isinstance(judge, DebateJudge)
    assert set(evaluation_config(recipe)["llm"]["debate-judge"]) >= {"template", "parser"}
    import prefmill.engines.registry

    monkeypatch.setattr(prefmill.engines.registry, "get_engine", lambda spec: PrefersGood())
    table = judge_shard(_shard(), [judge])
    assert table.column("prefers_first").to_pylist() == [1.0]
