"""Synthesis strategies with small scripted engines (no model): policies and ladders, offline import,
best-of-n, verbalized sampling, reweighting, near-duplicates and the shard runner with retries."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefmill.engines.base import Generation, GenerationRequest, Messages
from prefmill.errors import InputError, RecipeError
from prefmill.ids import content_id, seed_for
from prefmill.recipe import ResolvedPolicy, VerbalizedConfig, parse_recipe
from prefmill.storage.schemas import MESSAGE, schema_for
from prefmill.tasks.synthesis.best_of_n import best_of_n
from prefmill.tasks.synthesis.offline import OfflineSpec, check_matched, import_offline, read_offline
from prefmill.tasks.synthesis.online import synthesize
from prefmill.tasks.synthesis.reweight import score_into
from prefmill.tasks.synthesis.verbalized import instruction, parse, verbalize


class Engine:
    """Scripted: ``reply(request)`` gives the text; ``score`` is minus the response length."""

    def __init__(self, name: str = "scripted:a", reply=None) -> None:
        self.name = name
        self.model = name
        self.reply = reply or (lambda r: f"{r.messages[-1]['content']}|{r.sampling.top_p}|{r.seed}")
        self.requests: list[GenerationRequest] = []
        self.scored: list[tuple[Messages, str]] = []

    def generate(self, requests: list[GenerationRequest], progress=None) -> list[Generation]:
        self.requests += requests
        out = []
        for r in requests:
            text = self.reply(r)
            if text is None:
                out.append(Generation.failed("HTTP 503"))
            else:
                out.append(Generation(text, 7, 3, "stop", -2.0, 1.0))
        return out

    def score(self, items: list[tuple[Messages, str]]) -> list[float]:
        self.scored += items
        return [-float(len(r)) for _, r in items]


def _prompts(*contents: str, references: list[str | None] | None = None) -> pa.Table:
    msgs = [[{"role": "user", "content": c}] for c in contents]
    return pa.table(
        {
            "prompt_id": pa.array([content_id({"messages": m}) for m in msgs], pa.string()),
            "messages": pa.array(msgs, pa.list_(MESSAGE)),
            "source": pa.array(["t"] * len(contents), pa.string()),
            "reference": pa.array(references or [None] * len(contents), pa.string()),
        }
    )


ARGS = {"temperatures": [0.5, 1.0], "top_p": [0.8, 0.9, 1.0], "max_new_tokens": 8, "seed": 3}

# -- online: ladders and policies -------------------------------------------------------------


def test_top_p_ladder_and_named_policy_seeds() -> None:
    engine = Engine()
    out = synthesize(_prompts("a"), engine, k=4, **ARGS, policy="big")
    sampling = [json.loads(s) for s in out.column("sampling").to_pylist()]
    assert [s["top_p"] for s in sampling] == [0.8, 0.9, 1.0, 0.8]
    assert [s["temperature"] for s in sampling] == [0.5, 1.0, 0.5, 1.0]
    pid = out.column("prompt_id")[0].as_py()
    assert [s["seed"] for s in sampling] == [seed_for(3, "big", pid, i) for i in range(4)]
    assert set(out.column("policy").to_pylist()) == {"big"}
    assert set(out.column("strategy").to_pylist()) == {"sample"}
    assert out.column("response")[1].as_py() == f"a|0.9|{seed_for(3, 'big', pid, 1)}"
    unnamed = synthesize(_prompts("a"), Engine(), k=4, **ARGS)
    assert json.loads(unnamed.column("sampling")[0].as_py())["seed"] == seed_for(3, pid, 0)
    assert set(unnamed.column("candidate_id").to_pylist()).isdisjoint(out.column("candidate_id").to_pylist())


RECIPE = """\
dataset: d
prompts:
  sources: [{kind: arithmetic, n: 2}]
synthesis:
  k: 3
  temperature: 0.7
  top_p: [0.9, 1.0]
  policies:
    - {engine: "transformers:smollm2"}
    - {name: hot, engine: "transformers:smollm2", temperature: [1.2], k: 1, strategy: verbalized}
"""


def test_recipe_policies_inherit_the_section() -> None:
    policies = parse_recipe(RECIPE).synthesis.resolved_policies()
    common = {"engine": "transformers:smollm2", "top_ps": [0.9, 1.0], "max_new_tokens": 128, "batch_size": 64}
    assert policies == [
        ResolvedPolicy(name="transformers:smollm2", k=3, temperatures=[0.7], strategy="sample", **common),
        ResolvedPolicy(name="hot", k=1, temperatures=[1.2], strategy="verbalized", **common),
    ]
    assert policies[0].verbalized is None and policies[1].verbalized == VerbalizedConfig()
    legacy = parse_recipe(RECIPE.split("  policies:")[0]).synthesis.resolved_policies()
    assert [p.name for p in legacy] == [None]


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda r: r.replace("name: hot, ", ""), "name 'transformers:smollm2' is used twice"),
        (lambda r: r.replace("top_p: [0.9, 1.0]", "top_p: [0.9, 0]"), "top_p must be in (0, 1]"),
        (lambda r: r.replace("  k: 3\n", "  k: 3\n  online: false\n"), "nothing to synthesize"),
        (lambda r: r.replace("strategy: verbalized", "strategy: beam"), "strategy"),
    ],
)
def test_recipe_policy_errors(edit, fragment: str) -> None:
    with pytest.raises(RecipeError, match=fragment.replace("(", r"\(").replace("]", r"\]")) as info:
        parse_recipe(edit(RECIPE), name="r.yaml")
    assert "r.yaml line" in str(info.value)


# -- offline import ---------------------------------------------------------------------------


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_offline_long_and_wide_formats(tmp_path: Path) -> None:
    prompts = _prompts("What is 1+1?", "Say hi")
    long = _jsonl(
        tmp_path / "long.jsonl",
        [
            {"prompt": "What is 1+1?", "response": "2", "model": "gpt-x", "rating": 9},
            {"prompt": "What is 1+1?", "response": "3", "model": "gpt-x", "rating": "1.5"},
            {"messages": [{"role": "user", "content": "Say hi"}], "response": "hi"},
        ],
    )
    spec = OfflineSpec(path=str(long))
    rows = read_offline(spec)
    assert rows.column("location").to_pylist() == ["long.jsonl:1", "long.jsonl:2", "long.jsonl:3"]
    out = import_offline(spec, rows, prompts.column("prompt_id").to_pylist())
    assert out.schema.equals(schema_for("candidates"))
    got = [
        (r["response"], r["generator"], r["rating"], r["sample_index"], r["origin"]) for r in out.to_pylist()
    ]
    assert got == [
        ("2", "gpt-x", 9.0, 0, "offline"),
        ("3", "gpt-x", 1.5, 1, "offline"),
        ("hi", "offline:long.jsonl", None, 0, "offline"),
    ]
    assert set(out.column("strategy").to_pylist()) == {"offline"}
    assert import_offline(spec, rows, prompts.column("prompt_id").to_pylist()).equals(out)  # same ids

    wide = tmp_path / "wide.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "instruction": "Say hi",
                    "completions": [{"text": "hello", "rating": 4.0}, {"text": "bye", "rating": 1.0}],
                    "model": ["m1", "m2"],
                }
            ]
        ),
        wide,
    )
    spec = OfflineSpec(path=str(wide), prompt_field="instruction", response_field="completions")
    out = import_offline(spec, read_offline(spec), prompts.column("prompt_id").to_pylist())
    got = [(r["response"], r["generator"], r["rating"], r["sample_index"]) for r in out.to_pylist()]
    assert got == [("hello", "m1", 4.0, 0), ("bye", "m2", 1.0, 0)]
    assert read_offline(spec).column("location").to_pylist() == ["wide.parquet:row 1"] * 2


def test_offline_wide_list_of_objects_and_hf_folder(tmp_path: Path) -> None:
    import datasets

    prompts = _prompts("Say hi")
    data = datasets.Dataset.from_list(
        [
            {
                "prompt": "Say hi",
                "responses": [{"response": "hello", "rating": 4.0}, {"response": "bye", "rating": 1.0}],
                "model": ["m1", "m2"],
            }
        ]
    )
    data.save_to_disk(str(tmp_path / "ds"))
    spec = OfflineSpec(path=str(tmp_path / "ds"), response_field="responses")
    out = import_offline(spec, read_offline(spec), prompts.column("prompt_id").to_pylist())
    assert [(r["response"], r["generator"], r["rating"]) for r in out.to_pylist()] == [
        ("hello", "m1", 4.0),
        ("bye", "m2", 1.0),
    ]
    csv = tmp_path / "r.csv"
    csv.write_text('prompt,response,rating\n"Say hi","hey\nthere",3\n')
    spec = OfflineSpec(path=str(csv), generator="old-model")
    out = import_offline(spec, read_offline(spec), prompts.column("prompt_id").to_pylist())
    assert out.to_pylist()[0]["response"] == "hey\nthere" and out.to_pylist()[0]["generator"] == "old-model"


def test_offline_csv_locations_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('prompt,response\n"Say hi","hey\nthere"\n\nSay hi,yo\n')
    rows = read_offline(OfflineSpec(path=str(path)))
    assert rows.column("location").to_pylist() == ["r.csv:row 2", "r.csv:row 5"]
    path.write_text("prompt,response\nSay hi,yo,extra\n")
    with pytest.raises(InputError, match=r"r\.csv line 2: the row has 3 cells but the header has 2"):
        read_offline(OfflineSpec(path=str(path)))


def test_offline_errors_name_file_and_line(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "r.jsonl",
        [{"prompt": "Say hi", "response": "hi"}, {"prompt": "Unknown prompt", "response": "x"}],
    )
    known = set(_prompts("Say hi").column("prompt_id").to_pylist())
    rows = read_offline(OfflineSpec(path=str(path)))
    with pytest.raises(InputError, match=r"r\.jsonl:2: the prompt of this response is not in the prompts"):
        check_matched(OfflineSpec(path=str(path)), rows, known)
    assert check_matched(OfflineSpec(path=str(path), on_unmatched="skip"), rows, known) == 1
    bad = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "Say hi", "response": "hi", "rating": "great"}])
    with pytest.raises(InputError, match=r"bad\.jsonl:1: field 'rating' is 'great', not a number"):
        read_offline(OfflineSpec(path=str(bad)))
    none = _jsonl(tmp_path / "none.jsonl", [{"prompt": "Say hi", "answer": "hi"}])
    with pytest.raises(InputError, match=r"none\.jsonl:1: field 'response' is missing"):
        read_offline(OfflineSpec(path=str(none)))
    with pytest.raises(InputError, match="not found"):
        read_offline(OfflineSpec(path=str(tmp_path / "nope.jsonl")))


# -- best-of-n --------------------------------------------------------------------------------


def test_best_of_n_samples_until_accepted() -> None:
    # the right answer (7) only for sample index 3 of prompt 'p'; prompt 'q' always right
    def reply(r: GenerationRequest) -> str:
        content = r.messages[-1]["content"]
        if content == "q":
            return "The answer is 4."
        if content == "open":
            return "Some text."
        index = next(i for i in range(10) if seed_for(0, pid_p, i) == r.seed)
        return "The answer is 7." if index == 3 else "The answer is 1."

    prompts = _prompts("p", "q", "open", references=["7", "4", None])
    pid_p = prompts.column("prompt_id")[0].as_py()
    engine = Engine(reply=reply)
    out, stats = best_of_n(
        prompts,
        engine,
        k=2,
        budget=6,
        min_accepted=1,
        temperatures=[1.0],
        top_p=1.0,
        max_new_tokens=8,
        seed=0,
    )
    rows = out.to_pylist()
    by = {}
    for r in rows:
        by.setdefault(r["prompt_id"], []).append(r)
    p, q, o = (by[pid] for pid in prompts.column("prompt_id").to_pylist())
    assert [r["accepted"] for r in p] == [False, False, False, True]  # two rounds of 2, stop at the hit
    assert {r["attempts"] for r in p} == {4} and [r["sample_index"] for r in p] == [0, 1, 2, 3]
    assert [r["accepted"] for r in q] == [True, True] and {r["attempts"] for r in q} == {2}
    assert [r["accepted"] for r in o] == [None, None]  # no reference: one round, not judged
    assert set(out.column("strategy").to_pylist()) == {"best_of_n"}
    assert stats == {
        "best_of_n_samples": 8,
        "best_of_n_rounds": 2,
        "best_of_n_verifiable": 2,
        "best_of_n_accepted_prompts": 2,
    }
    capped, stats = best_of_n(
        prompts.slice(0, 1),
        Engine(reply=lambda r: "The answer is 0"),
        k=2,
        budget=3,
        min_accepted=1,
        temperatures=[1.0],
        top_p=1.0,
        max_new_tokens=8,
        seed=0,
    )
    assert capped.num_rows == 3 and stats["best_of_n_accepted_prompts"] == 0  # budget caps the rounds


# -- verbalized -------------------------------------------------------------------------------

GOOD = (
    "<response><text>A cat.</text><probability>0.5</probability></response>\n"
    "<response><text>A dog.</text><probability>30%</probability></response>\n"
    "<response><text>A fish.</text></response>"
)


def test_parse_verbalized_output() -> None:
    assert parse(GOOD, 5) == [("A cat.", 0.5), ("A dog.", 0.3), ("A fish.", None)]
    assert parse(GOOD, 2) == [("A cat.", 0.5), ("A dog.", 0.3)]
    assert parse("<text>one<probability>2</probability><text>two</text>", 5) == [("one", None), ("two", None)]
    assert parse("Sure! Here are some ideas: cats, dogs.", 5) == []
    assert "3 different" in instruction(3) and instruction(2, "give {n}") == "give 2"


def test_verbalize_splits_calls_and_keeps_unparseable_output() -> None:
    def reply(r: GenerationRequest) -> str | None:
        content = r.messages[-1]["content"]
        assert "Give 3 different possible responses" in content
        return GOOD if content.startswith("pets") else None if content.startswith("down") else "no tags here"

    out = verbalize(
        _prompts("pets", "chat", "down"),
        Engine(reply=reply),
        k=1,
        n=3,
        temperatures=[1.0],
        top_p=1.0,
        max_new_tokens=50,
        seed=0,
    )
    rows = out.to_pylist()
    assert [r["response"] for r in rows[:3]] == ["A cat.", "A dog.", "A fish."]
    assert [r["stated_probability"] for r in rows[:3]] == [0.5, 0.3, None]
    assert [r["sample_index"] for r in rows[:3]] == [0, 1, 2] and [r["n_tokens"] for r in rows[:3]] == [
        7,
        0,
        0,
    ]
    assert (
        rows[3]["response"] is None
        and rows[3]["raw"] == "no tags here"
        and "no <text> block" in rows[3]["error"]
    )
    assert rows[4]["error"] == "HTTP 503" and rows[4]["raw"] is None
    assert len(set(out.column("candidate_id").to_pylist())) == 5


# -- reweighting, diversity, the shard runner -------------------------------------------------


def test_score_into_fills_only_successful_rows() -> None:
    prompts = _prompts("a")
    cands = synthesize(prompts, Engine(reply=lambda r: None if r.seed % 2 else "xyz"), k=4, **ARGS)
    engine = Engine()
    messages = {prompts.column("prompt_id")[0].as_py(): prompts.column("messages")[0].as_py()}
    scored, n = score_into(cands, messages, engine, "policy_logprob")
    ok = [e is None for e in cands.column("error").to_pylist()]
    assert n == sum(ok) and len(engine.scored) == n
    assert scored.column("policy_logprob").to_pylist() == [-3.0 if good else None for good in ok]


def test_strategies_template_is_consistent(tmp_path: Path) -> None:
    from prefmill.cli import run
    from prefmill.flows.synthesis import synthesis_config
    from prefmill.recipe import load_recipe
    from prefmill.tasks.prompts.loaders import load_file

    assert run(["init", "strategies", "--dir", str(tmp_path)]) == 0
    recipe = load_recipe(tmp_path / "strategies.yaml")
    assert [p.strategy for p in recipe.synthesis.resolved_policies()] == ["sample", "best_of_n", "verbalized"]
    config = synthesis_config(recipe)
    assert (
        config["offline"][0]["path"] == "strategies-responses.jsonl"
        and len(config["offline"][0]["sha256"]) == 64
    )
    prompts, _ = load_file(tmp_path / "strategies-prompts.jsonl")
    source = recipe.synthesis.offline[0]
    spec = OfflineSpec(path=str(tmp_path / source.path), response_field=source.response_field)
    rows = read_offline(spec)
    assert check_matched(spec, rows, set(prompts.column("prompt_id").to_pylist())) == 0
    assert rows.num_rows == 5 and set(rows.column("model").to_pylist()) == {"human-writer"}
