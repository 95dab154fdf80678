"""Rows of the LLM judge: position swap, the prefers_first convention, score scaling, rubric criteria,
the repair retry, seeds, engine errors, meta-judge selection and critique-revise rows.

The judge here is ``ScriptedJudge``, an engine whose replies follow fixed rules (it prefers a response
containing "good"; or, biased, always Response A), so every expected value is worked out by hand. The
real embedded model runs in tests/integration/test_llm_judges.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest

from prefmill.engines.base import Generation, GenerationRequest
from prefmill.errors import RecipeError, SchemaError
from prefmill.ids import seed_for
from prefmill.recipe import CritiqueReviseJudge, LLMJudge, MetaJudge
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.fidelity import position_consistency
from prefmill.tasks.evaluation.judge import judge_shard
from prefmill.tasks.evaluation.llm_judge import llm_judge, prompt_criteria
from prefmill.tasks.evaluation.meta import disagreements
from prefmill.tasks.evaluation.revise import critique_revise


class ScriptedJudge:
    """An engine with fixed replies. ``style``: 'fair' prefers the response with "good" in it;
    'first' always says A; 'garbage' answers nonsense until it gets the repair prompt."""

    name = "scripted:judge"
    model = "scripted"

    def __init__(self, style: str = "fair", fail: set[str] | None = None) -> None:
        self.style = style
        self.fail = fail or set()
        self.requests: list[GenerationRequest] = []

    def _reply(self, req: GenerationRequest) -> str:
        text = req.messages[0]["content"]
        if self.style == "garbage" and len(req.messages) == 1:
            return "I think it is fine."
        if "[Response A]" in text:
            a = text.split("[Response A]")[1].split("[End of response A]")[0]
            if self.style == "first":
                return '{"better": "A", "strength": 3, "rationale": "A"}'
            if "good" in a:
                return '{"better": "A", "strength": 3, "rationale": "A has it"}'
            return "Response B is better. Strength: 1"
        if "Criteria:" in text:
            names = re.findall(r"^- (\w+):", text, re.M)
            return json.dumps({n: i + 1 for i, n in enumerate(names)} | {"rationale": "by index"})
        if "Critique the assistant" in text:
            return "It is too short."
        if "Rewrite the assistant" in text:
            return "A longer, good answer."
        response = text.split("[Assistant's response]")[-1]
        return "Score: 9" if "good" in response else '{"score": 3, "rationale": "weak"}'

    def generate(self, requests: list[GenerationRequest], progress: object = None) -> list[Generation]:
        self.requests += requests
        out = []
        for r in requests:
            if any(f in r.messages[0]["content"] for f in self.fail):
                out.append(Generation.failed("boom"))
            else:
                out.append(Generation(self._reply(r), 5, 10, "stop", -1.0, 1.0))
        return out

    def score(self, items: list) -> list[float]:
        return [0.0] * len(items)


def shard(*rows: tuple[str, str, str], rubric: dict[str, str | None] | None = None) -> pa.Table:
    """Candidates (candidate_id, prompt_id, response) joined with their prompt's messages and rubric."""
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
    return pa.Table.from_pylist(
        [
            {
                "candidate_id": c,
                "prompt_id": p,
                "response": r,
                "messages": [{"role": "user", "content": f"Q {p}"}],
                "reference": None,
                "rubric": (rubric or {}).get(p),
                "error": None,
            }
            for c, p, r in rows
        ],
        schema=schema,
    )


CANDS = shard(("c1", "p", "a good answer"), ("c2", "p", "meh"), ("c3", "p", "no"), ("d1", "q", "good"))


def test_pair_mode_judges_both_orders_with_candidate_id_shown_first() -> None:
    engine = ScriptedJudge("fair")
    out = llm_judge(LLMJudge(kind="llm", mode="pair"), CANDS, engine).to_pylist()
    # p has 3 candidates -> 3 pairs x 2 orders; q has 1 candidate -> none
    assert len(out) == 6 and len(engine.requests) == 6
    rows = {(r["candidate_id"], r["other_candidate_id"], r["order"]): r for r in out}
    # order ab shows the lower id first, ba the higher; candidate_id is the one shown first
    assert set(rows) == {
        p for a, b in [("c1", "c2"), ("c1", "c3"), ("c2", "c3")] for p in ((a, b, "ab"), (b, a, "ba"))
    }
    texts = {"c1": "a good answer", "c2": "meh", "c3": "no"}
    for row, request in zip(out, engine.requests, strict=True):  # one request per row, in order
        shown_a = request.messages[0]["content"].split("[Response A]")[1].split("[End of response A]")[0]
        assert shown_a.strip() == texts[row["candidate_id"]]
    # c1 is good: shown first the judge says "A, strength 3" (prefers_first 1.0); c2 shown first, it
    # says "B is better, strength 1" (prefers_first 1/3): both rows put c1 ahead -- consistent
    assert rows["c1", "c2", "ab"]["prefers_first"] == 1.0
    assert rows["c2", "c1", "ba"]["prefers_first"] == pytest.approx(1 / 3)
    # neither c2 nor c3 is good: "B is better, strength 1" whichever is shown first -- inconsistent
    assert rows["c2", "c3", "ab"]["prefers_first"] == pytest.approx(1 / 3)
    assert rows["c3", "c2", "ba"]["prefers_first"] == pytest.approx(1 / 3)
    assert all(r["mode"] == "pair" and r["kind"] == "llm" and r["score"] is None for r in out)
    assert {r["judge"] for r in out} == {"llm-pair:transformers:smollm2"}
    assert len({r["judgment_id"] for r in out}) == 6
    rates = position_consistency(pa.Table.from_pylist(out))
    assert rates["llm-pair:transformers:smollm2"] == {"pairs": 3, "consistent": 2, "rate": round(2 / 3, 6)}


def test_a_position_biased_judge_is_inconsistent_on_every_pair() -> None:
    out = llm_judge(LLMJudge(kind="llm", mode="pair", name="biased"), CANDS, ScriptedJudge("first"))
    assert {r["prefers_first"] for r in out.to_pylist()} == {1.0}  # always Response A
    assert position_consistency(out)["biased"] == {"pairs": 3, "consistent": 0, "rate": 0.0}


def test_pair_mode_without_swap_and_with_a_pair_limit() -> None:
    out = llm_judge(
        LLMJudge(kind="llm", mode="pair", swap=False, max_pairs_per_prompt=2), CANDS, ScriptedJudge()
    )
    assert [(r["candidate_id"], r["other_candidate_id"], r["order"]) for r in out.to_pylist()] == [
        ("c1", "c2", "ab"),
        ("c1", "c3", "ab"),
    ]


def test_point_mode_scales_scores_and_seeds_are_deterministic() -> None:
    engine = ScriptedJudge()
    config = LLMJudge(kind="llm", name="pt", seed=7)
    out = {r["candidate_id"]: r for r in llm_judge(config, CANDS, engine).to_pylist()}
    assert out["c1"]["score"] == pytest.approx((9 - 1) / 9)  # "Score: 9" on 1..10
    assert out["c2"]["score"] == pytest.approx((3 - 1) / 9)
    assert out["c2"]["rationale"] == "3/10: weak"
    assert out["c1"]["raw"] == "Score: 9"
    assert [r.seed for r in engine.requests] == [
        seed_for(7, "pt", c, None, None) for c in ("c1", "c2", "c3", "d1")
    ]
    assert all(r.sampling.temperature == 0.0 for r in engine.requests)
    again = llm_judge(config, CANDS, ScriptedJudge())
    assert again.equals(llm_judge(config, CANDS, engine))


def test_rubric_mode_uses_the_prompts_rubric_when_present() -> None:
    cands = shard(
        ("c1", "p", "x"), ("d1", "q", "y"), rubric={"q": '{"accuracy": "is it right", "tone": "polite"}'}
    )
    config = LLMJudge(
        kind="llm", mode="rubric", min_score=1, max_score=5, criteria={"helpfulness": "h", "honesty": "t"}
    )
    out = llm_judge(config, cands, ScriptedJudge()).to_pylist()
    got = {(r["candidate_id"], r["criterion"]): r["score"] for r in out}
    # the scripted judge scores criterion i with i + 1 on 1..5
    assert got == {
        ("c1", "helpfulness"): 0.0,
        ("c1", "honesty"): 0.25,
        ("d1", "accuracy"): 0.0,
        ("d1", "tone"): 0.25,
    }
    assert all(r["mode"] == "point" and r["parse_error"] is None for r in out)


def test_prompt_criteria_formats() -> None:
    default = {"helpfulness": "h"}
    assert prompt_criteria(None, default) == default
    assert prompt_criteria("Mentions Paris.", default) == {"rubric": "Mentions Paris."}
    assert prompt_criteria('["accuracy", "tone"]', default) == {"accuracy": "accuracy", "tone": "tone"}
    assert prompt_criteria('[{"name": "a", "description": "d"}]', default) == {"a": "d"}


def test_unparseable_replies_are_repaired_once_or_kept_as_parse_errors() -> None:
    engine = ScriptedJudge("garbage")
    out = llm_judge(LLMJudge(kind="llm"), CANDS, engine).to_pylist()
    assert len(engine.requests) == 8  # 4 asks + 4 repairs
    repair = engine.requests[4]
    assert [m["role"] for m in repair.messages] == ["user", "assistant", "user"]
    assert repair.messages[1]["content"] == "I think it is fine."
    assert "could not be read: no score found" in repair.messages[2]["content"]
    assert all(r["parse_error"] is None and r["score"] is not None for r in out)
    assert out[0]["raw"].startswith("I think it is fine.\n\n[repair]\n")

    out = llm_judge(LLMJudge(kind="llm", repair=False), CANDS, ScriptedJudge("garbage")).to_pylist()
    assert all(r["score"] is None and r["raw"] == "I think it is fine." for r in out)
    assert all(r["parse_error"].startswith("no score found") for r in out)


def test_engine_errors_are_rows() -> None:
    out = llm_judge(LLMJudge(kind="llm"), CANDS, ScriptedJudge(fail={"meh"})).to_pylist()
    failed = [r for r in out if r["parse_error"]]
    assert [(r["candidate_id"], r["parse_error"], r["raw"]) for r in failed] == [
        ("c2", "engine error: boom", None)
    ]


def test_template_override_and_template_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.j2"
    path.write_text("Judge this: {{ response }} for {{ prompt }}. Score?", encoding="utf-8")
    engine = ScriptedJudge()
    llm_judge(LLMJudge(kind="llm", template=str(path)), shard(("c1", "p", "good")), engine)
    assert engine.requests[0].messages[0]["content"] == "Judge this: good for Q p. Score?"
    path.write_text("{{ respons }}", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"mine.j2: 'respons' is undefined"):
        llm_judge(LLMJudge(kind="llm", template=str(path)), shard(("c1", "p", "good")), engine)
    path.write_text("{% if %}", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"mine.j2 line 1: "):
        llm_judge(LLMJudge(kind="llm", template=str(path)), shard(("c1", "p", "good")), engine)


def test_llm_judge_needs_the_prompt_messages() -> None:
    with pytest.raises(SchemaError, match="lacks column\\(s\\) messages"):
        llm_judge(LLMJudge(kind="llm"), CANDS.drop(["messages"]), ScriptedJudge())


def test_disagreements_and_meta_judge_in_judge_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefmill.tasks.evaluation import llm_judge as module

    engine = ScriptedJudge()
    monkeypatch.setattr(module, "_engine", lambda config, e: engine)
    monkeypatch.setattr("prefmill.tasks.evaluation.meta._engine", lambda config, e: engine)
    # heuristic (kind verifier) and the scripted point judge disagree on some candidates
    judges = [
        "heuristic",
        LLMJudge(kind="llm", name="pt"),
        MetaJudge(kind="meta", threshold=0.3),
    ]
    out = judge_shard(CANDS, judges)
    prior = out.filter(pa.compute.not_equal(out.column("judge"), "meta-judge"))
    items = disagreements(prior, 0.3)
    meta = out.filter(pa.compute.equal(out.column("judge"), "meta-judge")).to_pylist()
    assert sorted(r["candidate_id"] for r in meta) == sorted(items.get_column("candidate_id").to_list())
    assert meta and all(r["rationale"].startswith("resolved spread") for r in meta)
    assert all(s > 0.3 for s in items.get_column("spread").to_list())
    # the meta prompt showed the other judges' verdicts
    meta_prompts = [
        r.messages[0]["content"] for r in engine.requests if "senior judge" in r.messages[0]["content"]
    ]
    assert len(meta_prompts) == len(meta) and all("- heuristic:" in p and "- pt:" in p for p in meta_prompts)


def test_critique_revise_makes_revision_candidates() -> None:
    engine = ScriptedJudge()
    out = critique_revise(CritiqueReviseJudge(kind="critique_revise"), CANDS, engine).to_pylist()
    assert len(out) == 4 and len(engine.requests) == 8  # a critique and a revision per candidate
    assert {r["parent_id"] for r in out} == {"c1", "c2", "c3", "d1"}
    assert all(r["origin"] == "revision" and r["response"] == "A longer, good answer." for r in out)
    assert all(json.loads(r["sampling"])["critique"] == "It is too short." for r in out)
    assert all(r["generator"] == "scripted:judge" for r in out)
    # revisions are not revised again, and failed critiques are error rows
    again = critique_revise(
        CritiqueReviseJudge(kind="critique_revise"),
        pa.Table.from_pylist(out).append_column(
            "messages", pa.array([[{"role": "user", "content": "Q"}]] * 4, pa.list_(MESSAGE))
        ),
        engine,
    )
    assert again.num_rows == 0
    failed = critique_revise(CritiqueReviseJudge(kind="critique_revise"), CANDS, ScriptedJudge(fail={"meh"}))
    errors = [r for r in failed.to_pylist() if r["error"]]
    assert [(r["parent_id"], r["error"], r["response"]) for r in errors] == [
        ("c2", "critique failed: boom", None)
    ]


def test_calibration_accuracy_and_file_errors(tmp_path: Path) -> None:
    from prefmill.errors import InputError
    from prefmill.tasks.evaluation.calibration import calibrate

    path = tmp_path / "cal.jsonl"
    lines = [
        {"prompt": "Q1", "chosen": "a good one", "rejected": "bad"},
        {"messages": [{"role": "user", "content": "Q2"}], "chosen": "meh", "rejected": "good stuff"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    # the scripted judge prefers "good": right on pair 1, wrong on pair 2
    assert calibrate(LLMJudge(kind="llm"), path, ScriptedJudge()) == {
        "pairs": 2,
        "judged": 2,
        "accuracy": 0.5,
        "parse_failures": 0,
    }
    pair = calibrate(LLMJudge(kind="llm", mode="pair"), path, ScriptedJudge())
    assert pair["accuracy"] == 0.5 and pair["judged"] == 2
    garbage = calibrate(LLMJudge(kind="llm", repair=False), path, ScriptedJudge("garbage"))
    assert garbage == {"pairs": 2, "judged": 0, "accuracy": None, "parse_failures": 4}

    path.write_text('{"prompt": "Q", "chosen": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"cal.jsonl line 1: a calibration pair needs"):
        calibrate(LLMJudge(kind="llm"), path, ScriptedJudge())
    path.write_text('{"prompt": "Q", "chosen": "x", "rejected": "y"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"cal.jsonl line 2: not valid JSON \(.*\); fix or remove the line"):
        calibrate(LLMJudge(kind="llm"), path, ScriptedJudge())


class StructuredJudge(ScriptedJudge):
    """The scripted judge on an engine that constrains replies to a JSON schema."""

    supports_response_format = True


def test_structured_output_sends_each_ask_its_own_verdict_schema() -> None:
    cands = shard(("c1", "p", "a good answer"), ("d1", "q", "meh"), rubric={"q": '["clarity", "tone"]'})
    engine = StructuredJudge()
    llm_judge(LLMJudge(kind="llm", min_score=0, max_score=9), cands, engine)
    score = {"type": "integer", "enum": list(range(10))}
    point = {
        "type": "object",
        "properties": {"score": score, "rationale": {"type": "string"}},
        "required": ["score", "rationale"],
        "additionalProperties": False,
    }
    assert [r.response_format for r in engine.requests] == [point, point]
    engine.requests.clear()
    rubric = LLMJudge(kind="llm", mode="rubric", criteria={"helpfulness": "helps"})
    llm_judge(rubric, cands, engine)
    schemas = {r.messages[0]["content"].count("- clarity"): r.response_format for r in engine.requests}
    # each prompt's own criteria, not the union over the shard
    assert list(schemas[0]["properties"]) == ["helpfulness", "rationale"]
    assert list(schemas[1]["properties"]) == ["clarity", "tone", "rationale"]
    assert schemas[1]["required"] == ["clarity", "tone", "rationale"]
    engine.requests.clear()
    llm_judge(LLMJudge(kind="llm", mode="pair"), CANDS, engine)
    pair = engine.requests[0].response_format
    assert pair["properties"]["better"]["enum"] == ["A", "B", "tie"]
    assert all(r.response_format == pair for r in engine.requests)


def test_no_schema_without_engine_support_or_when_turned_off() -> None:
    plain = ScriptedJudge()
    llm_judge(LLMJudge(kind="llm"), CANDS, plain)
    off = StructuredJudge()
    llm_judge(LLMJudge(kind="llm", structured_output=False), CANDS, off)
    assert plain.requests and off.requests
    assert all(r.response_format is None for r in plain.requests + off.requests)


def test_the_repair_prompt_keeps_the_schema() -> None:
    engine = StructuredJudge("garbage")
    llm_judge(LLMJudge(kind="llm"), shard(("c1", "p", "meh")), engine)
    first, repair = engine.requests
    assert len(repair.messages) == 3 and repair.response_format == first.response_format is not None
