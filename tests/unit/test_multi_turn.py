"""Prompts that are conversations with history: loading (messages and ShareGPT chats, role checks),
what judges are shown (earlier turns marked as context), the import of conversational preference
records (TRL conversational, HH conversations and text) and exports that keep the history."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from test_llm_judge import ScriptedJudge

from prefmill.errors import InputError
from prefmill.exports.formats import format_sql, get_format
from prefmill.ids import content_id
from prefmill.recipe import LLMJudge
from prefmill.storage.schemas import MESSAGE
from prefmill.tasks.evaluation.chat_pairs import hh_messages
from prefmill.tasks.evaluation.labelled_pairs import labelled_tables
from prefmill.tasks.evaluation.llm_judge import llm_judge
from prefmill.tasks.prompts.loaders import load_file

CHAT = [
    {"role": "system", "content": "You are a travel agent."},
    {"role": "user", "content": "I want a week in Portugal."},
    {"role": "assistant", "content": "Lisbon or Porto?"},
    {"role": "user", "content": "Porto. What should I see?"},
]


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _reasons(rejected: pa.Table) -> dict[str, str]:
    return dict(zip(rejected["location"].to_pylist(), rejected["reason"].to_pylist(), strict=True))


def test_multi_turn_and_sharegpt_chats_load_with_the_same_ids(tmp_path: Path) -> None:
    share = [
        {"from": "system", "value": CHAT[0]["content"]},
        {"from": "human", "value": CHAT[1]["content"]},
        {"from": "gpt", "value": CHAT[2]["content"]},
        {"from": "human", "value": CHAT[3]["content"]},
    ]
    rows = [{"messages": CHAT, "topic": "travel"}, {"conversations": share, "id": 7}]
    prompts, rejected = load_file(_jsonl(tmp_path / "p.jsonl", rows))
    assert rejected.num_rows == 0
    assert prompts["messages"].to_pylist() == [CHAT, CHAT]  # every turn kept, in order
    pid = content_id({"messages": CHAT})
    assert prompts["prompt_id"].to_pylist() == [pid, pid]
    assert [json.loads(m) for m in prompts["meta"].to_pylist()] == [{"topic": "travel"}, {"id": 7}]


def test_bad_conversations_are_rejected_with_what_to_do(tmp_path: Path) -> None:
    rows = [
        {"messages": [*CHAT, {"role": "assistant", "content": "See the Ribeira."}]},  # 1
        {"messages": [CHAT[1], CHAT[0], CHAT[3]]},  # 2: system after the first user turn
        {"conversations": [{"from": "bot", "value": "hi"}]},  # 3
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},  # 4
        {"conversations": "[not json"},  # 5
    ]
    _, rejected = load_file(_jsonl(tmp_path / "p.jsonl", rows))
    r = _reasons(rejected)
    assert "last message is from 'assistant'; it must be from 'user'" in r["p.jsonl:1"]
    assert "drop the final reply" in r["p.jsonl:1"]
    assert "message 1 is a system message after the conversation started" in r["p.jsonl:2"]
    assert (
        r["p.jsonl:3"]
        == "malformed chat in 'conversations': message 0 is from 'bot'; use one of system, human, gpt"
    )
    assert r["p.jsonl:4"].startswith("malformed messages in 'conversations': the last message is from")
    assert r["p.jsonl:5"].startswith("malformed chat in 'conversations': not JSON")


def _cands(chat: list[dict[str, str]], *responses: str) -> pa.Table:
    schema = pa.schema(
        [
            ("candidate_id", pa.string()),
            ("prompt_id", pa.string()),
            ("response", pa.string()),
            ("messages", pa.list_(MESSAGE)),
        ]
    )
    rows = [
        {"candidate_id": f"c{i}", "prompt_id": "p", "response": r, "messages": chat}
        for i, r in enumerate(responses)
    ]
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.mark.parametrize("mode", ["point", "pair"])
def test_judges_see_earlier_turns_marked_as_context(mode: str) -> None:
    engine = ScriptedJudge()
    llm_judge(
        LLMJudge(kind="llm", engine="scripted:judge", mode=mode), _cands(CHAT, "good: Ribeira", "bad"), engine
    )
    text = engine.requests[0].messages[0]["content"]
    context = text.split("[Earlier turns of the conversation, for context]\n")[1].split(
        "[End of earlier turns]"
    )[0]
    assert context == (
        "[System] You are a travel agent.\n[User] I want a week in Portugal.\n[Assistant] Lisbon or Porto?\n"
    )
    last = text.split("[User's last message, which the response answers]\n")[1]
    assert last.startswith("Porto. What should I see?\n")
    assert "[User]\n" not in text

    single = ScriptedJudge()
    llm_judge(
        LLMJudge(kind="llm", engine="scripted:judge", mode=mode), _cands([CHAT[3]], "good", "bad"), single
    )
    one = single.requests[0].messages[0]["content"]
    assert "[User]\nPorto. What should I see?\n" in one and "Earlier turns" not in one


def test_conversational_records_import_with_the_history_as_prompt(tmp_path: Path) -> None:
    def say(text: str) -> dict[str, str]:
        return {"role": "assistant", "content": text}

    hh = (
        "\n\nHuman: I want a week in Portugal.\n\nAssistant: Lisbon or Porto?\n\nHuman: Porto. "
        "What should I see?"
    )
    rows = [
        {"prompt": CHAT, "chosen": [say("good 1")], "rejected": [say("bad 1")]},  # TRL conversational
        {"chosen": [*CHAT, say("good 2")], "rejected": [*CHAT, say("bad 2")]},  # implicit: shared turns
        {"prompt": CHAT[:2], "chosen": [*CHAT[2:], say("good 3")], "rejected": [*CHAT[2:], say("bad 3")]},
        {"chosen": hh + "\n\nAssistant: good 4", "rejected": hh + "\n\nAssistant: bad 4"},  # HH text
        {"prompt": CHAT, "chosen": "good 5", "rejected": "bad 5"},  # a chat prompt, text replies
    ]
    prompts, candidates, judgments = labelled_tables(_jsonl(tmp_path / "pairs.jsonl", rows))
    assert prompts["messages"].to_pylist() == [CHAT, CHAT[1:]]  # HH text has no system turn
    text = {r["candidate_id"]: r["response"] for r in candidates.to_pylist()}
    ids = {CHAT[0]["content"]: content_id({"messages": CHAT}), "hh": content_id({"messages": CHAT[1:]})}
    got = [
        (j["prompt_id"], text[j["candidate_id"]], text[j["other_candidate_id"]])
        for j in judgments.to_pylist()
    ]
    pid, hh_pid = ids[CHAT[0]["content"]], ids["hh"]
    assert got == [
        (pid, "good 1", "bad 1"),
        (pid, "good 2", "bad 2"),
        (pid, "good 3", "bad 3"),
        (hh_pid, "good 4", "bad 4"),
        (pid, "good 5", "bad 5"),
    ]
    assert set(judgments["prefers_first"].to_pylist()) == {1.0}


def test_the_same_conversational_pair_twice_is_refused(tmp_path: Path) -> None:
    reply, worse = {"role": "assistant", "content": "yes"}, {"role": "assistant", "content": "no"}
    rows = [
        {"prompt": CHAT, "chosen": [reply], "rejected": [worse]},
        {"chosen": [*CHAT, reply], "rejected": [*CHAT, worse]},
    ]
    with pytest.raises(InputError, match=r"line 2: repeats the pair of .*line 1"):
        labelled_tables(_jsonl(tmp_path / "pairs.jsonl", rows))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {
                "chosen": [*CHAT, {"role": "assistant", "content": "a"}],
                "rejected": [CHAT[3], {"role": "assistant", "content": "b"}],
            },
            "line 1: 'chosen' and 'rejected' differ from message 0 on but must share every turn",
        ),
        (
            {
                "prompt": CHAT,
                "chosen": [{"role": "user", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "line 1: the last message of 'chosen' is from 'user'; it must be the assistant's reply",
        ),
        (
            {
                "prompt": CHAT[:3],
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "line 1: the prompt .* is not usable: the last message is from 'assistant'",
        ),
        (
            {
                "prompt": CHAT,
                "chosen": [{"role": "robot", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "line 1: 'chosen' message 0 must be \\{role, content\\} with role system, user or assistant",
        ),
        (
            {
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "line 1: no prompt: give 'prompt'",
        ),
        (
            {"messages": CHAT[:3], "chosen": "a", "rejected": "b"},
            "line 1: 'messages' is not a usable prompt: the last message is from 'assistant'",
        ),
    ],
)
def test_malformed_conversational_records_name_the_line(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        labelled_tables(_jsonl(tmp_path / "pairs.jsonl", [row]))


def test_hh_text_splits_into_turns() -> None:
    text = "\n\nHuman: Hi\nthere\n\nAssistant: Hello!\n\nHuman: Bye"
    assert hh_messages(text) == [
        {"role": "user", "content": "Hi\nthere"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]


_CON: list = []
CHAT_TYPE = "STRUCT(role VARCHAR, content VARCHAR)[]"


def _export(fmt: str, source: list[dict], prompts: list[dict], conversational: bool) -> list[dict]:
    """The rows of export format ``fmt`` over ``source`` rows, as ``export_table`` computes them."""
    con = _CON[0]
    con.register("source_rows", pa.Table.from_pylist(source))
    con.execute("CREATE OR REPLACE VIEW source AS SELECT * FROM source_rows")
    con.execute(f"CREATE OR REPLACE TABLE prompts (prompt_id VARCHAR, messages {CHAT_TYPE})")
    for p in prompts:
        con.execute("INSERT INTO prompts VALUES (?, ?)", [p["prompt_id"], p["messages"]])
    spec = get_format(fmt)
    return con.sql(format_sql(spec, spec.table or "pairs", conversational)).to_arrow_table().to_pylist()


def test_exports_keep_the_history() -> None:
    import duckdb

    _CON[:] = [duckdb.connect()]  # one connection: each costs ~0.1 s to open
    chats = [{"prompt_id": "p1", "messages": CHAT}, {"prompt_id": "p2", "messages": [CHAT[0], CHAT[3]]}]
    pairs = [
        {"prompt_id": p, "prompt": CHAT[3]["content"], "chosen": "yes", "rejected": "no", "margin": 1.0}
        for p in ("p1", "p2")
    ]
    flat = (
        "System: You are a travel agent.\n\nUser: I want a week in Portugal.\n\nAssistant: Lisbon or Porto?"
        "\n\nUser: Porto. What should I see?"
    )
    chat = _export("trl-preference", pairs, chats, True)  # TRL conversational: the full message list
    assert [r["prompt"] for r in chat] == [CHAT, [CHAT[0], CHAT[3]]]
    assert chat[0]["chosen"] == [{"role": "assistant", "content": "yes"}]
    text = _export("trl-preference", pairs, chats, False)  # standard: the conversation as text
    assert [r["prompt"] for r in text] == [flat, "Porto. What should I see?"]  # no earlier turns: as before
    reward = _export("trl-reward", pairs, chats, False)
    assert reward[0]["chosen"] == flat + "\n\nyes"
    assert [r["prompt"] for r in _export("trl-preference", pairs, [], False)] == [CHAT[3]["content"]] * 2
    points = [{"prompt_id": "p1", "prompt": "x", "completion": "yes", "label": True}]
    assert _export("trl-unpaired", points, chats, False)[0]["prompt"] == flat
    only = _export("trl-prompt-only", [{**c, "reference": None} for c in chats], [], False)
    assert [r["prompt"] for r in only] == [flat, "Porto. What should I see?"]


def test_the_openai_engine_sends_the_whole_conversation() -> None:
    from fault_server import FaultServer

    from prefmill.engines.base import GenerationRequest, SamplingParams
    from prefmill.engines.registry import clear_engines, get_engine

    chat = [*CHAT[:3], {"role": "user", "content": "ok:Porto"}]  # the server answers the last user turn
    with FaultServer() as server:
        clear_engines()
        try:
            engine = get_engine(f"openai:m@{server.url}?timeout=5")
            out = engine.generate([GenerationRequest(chat, SamplingParams(0.7, 0.9, 16), 1)])
        finally:
            clear_engines()
    assert out[0].text == "echo Porto"
    assert server.bodies[0]["messages"] == chat
