"""Prompt loaders (JSONL / CSV / Parquet), rejections, stopping errors and de-duplication."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefmill.errors import InputError
from prefmill.ids import canonical_json, content_id
from prefmill.storage.schemas import conform
from prefmill.tasks.prompts import PROMPTS_CODE_VERSION, arithmetic_problems, combine, load_file
from prefmill.tasks.prompts.loaders import _text_id


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def user_id(text: str) -> str:
    return content_id({"messages": [{"role": "user", "content": text}]})


def rejections(rejected: pa.Table) -> dict[str, str]:
    return dict(zip(rejected["location"].to_pylist(), rejected["reason"].to_pylist(), strict=True))


# --- formats ------------------------------------------------------------------------------------


def test_jsonl_text_and_messages_rows(tmp_path: Path) -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 2 + 2?"},
    ]
    path = write_jsonl(
        tmp_path / "prompts.jsonl",
        [
            {"prompt": "Write a haiku.", "topic": "poetry", "level": 2},
            {"messages": chat, "reference": 4, "rubric": {"correct": "says 4"}},
        ],
    )
    prompts, rejected = load_file(path)
    assert rejected.num_rows == 0
    rows = prompts.to_pylist()
    assert rows[0]["messages"] == [{"role": "user", "content": "Write a haiku."}]
    assert rows[0]["prompt_id"] == user_id("Write a haiku.")
    assert rows[0]["meta"] == canonical_json({"topic": "poetry", "level": 2})
    assert rows[0]["reference"] is None and rows[0]["rubric"] is None
    assert rows[0]["source"] == "prompts.jsonl"
    assert rows[0]["location"] == "prompts.jsonl:1"
    assert rows[1]["messages"] == chat
    assert rows[1]["prompt_id"] == content_id({"messages": chat})
    assert rows[1]["reference"] == "4"  # numbers are stringified
    assert json.loads(rows[1]["rubric"]) == {"correct": "says 4"}
    assert rows[1]["meta"] == "{}"
    # The declared schema holds, with `location` as an extra trailing column.
    conform("prompts", prompts)
    assert prompts.column_names[-1] == "location"


def test_csv_and_parquet_load_the_same_prompts(tmp_path: Path) -> None:
    csv_path = tmp_path / "prompts.csv"
    csv_path.write_text(
        'prompt,reference,tag\nWhat is 6 * 7?,42,math\n"A prompt\nover two lines",,multi\n',
        encoding="utf-8",
    )
    pq_path = tmp_path / "prompts.parquet"
    pq.write_table(
        pa.table(
            {
                "prompt": ["What is 6 * 7?", "A prompt\nover two lines"],
                "reference": [42, None],
                "tag": ["math", "multi"],
            }
        ),
        pq_path,
    )
    for path, locations in (
        (csv_path, ["prompts.csv:row 2", "prompts.csv:row 3"]),
        (pq_path, ["prompts.parquet:row 1", "prompts.parquet:row 2"]),
    ):
        prompts, rejected = load_file(path, source="mine")
        assert rejected.num_rows == 0
        assert prompts["prompt_id"].to_pylist() == [
            user_id("What is 6 * 7?"),
            user_id("A prompt\nover two lines"),
        ]
        assert prompts["reference"].to_pylist() == ["42", None]
        assert [json.loads(m) for m in prompts["meta"].to_pylist()] == [{"tag": "math"}, {"tag": "multi"}]
        assert prompts["source"].to_pylist() == ["mine", "mine"]
        assert prompts["location"].to_pylist() == locations


def test_csv_messages_cell_holds_json(tmp_path: Path) -> None:
    chat = [{"role": "system", "content": "Terse."}, {"role": "user", "content": "Name a colour."}]
    path = tmp_path / "chats.csv"
    cell = json.dumps(chat).replace('"', '""')
    path.write_text(f'messages,prompt\n"{cell}",\n,Plain text\n', encoding="utf-8")
    prompts, rejected = load_file(path)
    assert rejected.num_rows == 0
    assert prompts["messages"].to_pylist() == [chat, [{"role": "user", "content": "Plain text"}]]


def test_fmt_overrides_suffix_and_custom_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.txt", [{"question": "Why?", "answer": "Because."}])
    with pytest.raises(InputError, match=r"unknown suffix '\.txt'"):
        load_file(path)
    prompts, _ = load_file(path, fmt="jsonl", field="question", reference_field="answer")
    assert prompts["prompt_id"].to_pylist() == [user_id("Why?")]
    assert prompts["reference"].to_pylist() == ["Because."]
    assert prompts["meta"].to_pylist() == ["{}"]


def test_prompt_id_is_stable_across_formats_and_sources(tmp_path: Path) -> None:
    text = 'Say "héllo" in French.\nThen stop.'
    jsonl = write_jsonl(tmp_path / "a.jsonl", [{"prompt": text, "extra": 1}])
    csv_path = tmp_path / "b.csv"
    csv_path.write_text('prompt\n"Say ""héllo"" in French.\nThen stop."\n', encoding="utf-8")
    (a, _), (b, _) = load_file(jsonl, source="x"), load_file(csv_path, source="y")
    assert a["prompt_id"].to_pylist() == b["prompt_id"].to_pylist() == [user_id(text)]


@pytest.mark.parametrize("text", ["plain", 'quo"te\\', "ünïcödé ✓ \u2028 \x00 tab\t", "emoji 🚀"])
def test_fast_text_id_matches_content_id(text: str) -> None:
    assert _text_id(text) == user_id(text)


# --- rejected rows ------------------------------------------------------------------------------


def test_invalid_rows_are_rejected_with_location_and_reason(tmp_path: Path) -> None:
    rows: list[object] = [
        {"prompt": "fine"},  # 1
        {"text": "no prompt field"},  # 2
        {"prompt": "   \n"},  # 3
        {"prompt": 42},  # 4
        {"prompt": ["a", "b"]},  # 5
        {"prompt": {"x": 1}},  # 6
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},  # 7
        {"messages": [{"role": "robot", "content": "hi"}]},  # 8
        {"messages": "not a list"},  # 9
        {"messages": []},  # 10
        {"prompt": None},  # 11
        {"messages": [{"role": "user", "content": 5}]},  # 12
    ]
    path = write_jsonl(tmp_path / "prompts.jsonl", rows)
    prompts, rejected = load_file(path)
    assert prompts["location"].to_pylist() == ["prompts.jsonl:1"]
    reasons = rejections(rejected)
    assert set(reasons) == {f"prompts.jsonl:{i}" for i in range(2, 13)}
    assert reasons["prompts.jsonl:2"] == "missing field 'prompt' (and no 'messages')"
    assert reasons["prompts.jsonl:3"] == "empty prompt in field 'prompt'"
    assert reasons["prompts.jsonl:4"] == "prompt in field 'prompt' is a number, not text"
    assert reasons["prompts.jsonl:5"] == "prompt in field 'prompt' is a list, not text"
    assert reasons["prompts.jsonl:6"] == "prompt in field 'prompt' is an object, not text"
    assert "last message is from 'assistant'" in reasons["prompts.jsonl:7"]
    assert "role 'robot'" in reasons["prompts.jsonl:8"]
    assert reasons["prompts.jsonl:9"].startswith("malformed messages in 'messages': not JSON")
    assert "empty" in reasons["prompts.jsonl:10"]
    assert reasons["prompts.jsonl:11"] == "field 'prompt' is null"
    assert "no text 'content'" in reasons["prompts.jsonl:12"]
    assert all(
        r.startswith("malformed messages")
        for k, r in reasons.items()
        if int(k.split(":")[1]) >= 7 and k != "prompts.jsonl:11"
    )
    # raw is the row itself, as JSON
    raw = dict(zip(rejected["location"].to_pylist(), rejected["raw"].to_pylist(), strict=True))
    assert json.loads(raw["prompts.jsonl:4"]) == {"prompt": 42}
    assert set(rejected["source"].to_pylist()) == {"prompts.jsonl"}
    conform("prompts_rejected", rejected)


def test_csv_rejections_use_row_numbers_counting_the_header(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text('prompt,tag\nok,a\n,b\n"two\nlines",c\n  ,d\nonly-one-cell\n', encoding="utf-8")
    prompts, rejected = load_file(path)
    assert prompts["location"].to_pylist() == ["prompts.csv:row 2", "prompts.csv:row 4"]
    assert rejections(rejected) == {
        "prompts.csv:row 3": "empty prompt in field 'prompt'",
        "prompts.csv:row 6": "empty prompt in field 'prompt'",
        "prompts.csv:row 7": "row has 1 cells but the header has 2",
    }


# --- errors that stop the load -----------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: file not found"):
        load_file(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.csv", ""), ("header.csv", "prompt\n")],
)
def test_empty_file(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=rf"{name}: file is empty \(no rows\)"):
        load_file(path)


def test_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"prompt": pa.array([], pa.string())}), path)
    with pytest.raises(InputError, match="file is empty"):
        load_file(path)


def test_malformed_jsonl_line_names_file_line_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b" "x": 1}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_file(path)
    message = str(info.value)
    assert message == (
        "prompts.jsonl line 3: not valid JSON (Expecting ',' delimiter: column 16); fix or remove the line"
    )
    assert "\n" not in message


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n["a list"]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"prompts\.jsonl line 2: not a JSON object but a list"):
        load_file(path)


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"prompts\.jsonl line 2: not UTF-8"):
        load_file(path)


def test_unreadable_parquet_and_csv(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable Parquet file"):
        load_file(bad)
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(b"prompt\nok\n\xff\xfe broken\n")
    with pytest.raises(InputError, match=r"bad\.csv.*not UTF-8"):
        load_file(csv_path)


def test_no_prompt_column_names_the_columns_and_the_option(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Why?", "answer": "x"}, {"question": "How?"}])
    with pytest.raises(InputError) as info:
        load_file(path)
    message = str(info.value)
    assert "qa.jsonl" in message
    assert "fields found: answer, question" in message
    assert "`field`" in message and "`messages_field`" in message
    csv_path = tmp_path / "qa.csv"
    csv_path.write_text("question,answer\nWhy?,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="fields found: answer, question"):
        load_file(csv_path)


# --- combine / de-duplication ------------------------------------------------------------------


def test_combine_removes_duplicates_and_reports_them(tmp_path: Path) -> None:
    a = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"prompt": "Hi", "reference": "1"},
            {"prompt": "Yo"},
            {"prompt": ""},
            {"prompt": "Hi", "reference": "2"},
        ],
    )
    b = tmp_path / "b.csv"
    b.write_text("prompt,reference\nNew one,\nYo,\n", encoding="utf-8")
    prompts, rejected = combine([load_file(a), load_file(b)])
    assert prompts.column_names == ["prompt_id", "messages", "source", "reference", "rubric", "meta"]
    assert prompts["prompt_id"].to_pylist() == [user_id("Hi"), user_id("Yo"), user_id("New one")]
    assert prompts["source"].to_pylist() == ["a.jsonl", "a.jsonl", "b.csv"]
    assert prompts["reference"].to_pylist() == ["1", None, None]  # first occurrence kept
    reasons = rejections(rejected)
    assert reasons == {
        "a.jsonl:3": "empty prompt in field 'prompt'",
        "a.jsonl:4": f"duplicate of prompt_id {user_id('Hi')} (first seen at a.jsonl:1); "
        "its reference differs from the kept row's",
        "b.csv:row 3": f"duplicate of prompt_id {user_id('Yo')} (first seen at a.jsonl:2)",
    }
    raw = json.loads(rejected["raw"].to_pylist()[1])
    assert raw["messages"] == [{"role": "user", "content": "Hi"}] and raw["reference"] == "2"
    assert rejected["source"].to_pylist() == ["a.jsonl", "a.jsonl", "b.csv"]
    conform("prompts", prompts)
    conform("prompts_rejected", rejected)


def test_combine_accepts_tables_without_location_or_rejected_and_empty_input() -> None:
    gen = arithmetic_problems(5, seed=3).drop_columns(["location"])
    prompts, rejected = combine([(gen, None), (gen, pa.table({}))])
    assert prompts.num_rows == 5
    # Rows of a source without locations are numbered on across its parts.
    assert rejected["location"].to_pylist() == [f"arithmetic:row {i}" for i in range(6, 11)]
    assert [r.rsplit("(", 1)[1] for r in rejected["reason"].to_pylist()] == [
        f"first seen at arithmetic:row {i})" for i in range(1, 6)
    ]
    p0, r0 = combine([])
    assert p0.num_rows == 0 and r0.num_rows == 0
    conform("prompts_rejected", r0)
    assert PROMPTS_CODE_VERSION == "1"


def test_quickstart_prompts_file_loads() -> None:
    path = Path(__file__).parents[2] / "src" / "prefmill" / "recipes" / "quickstart-prompts.jsonl"
    prompts, rejected = load_file(path)
    assert prompts.num_rows == 12 and rejected.num_rows == 0
    assert prompts["reference"].null_count == 12
    assert len(set(prompts["prompt_id"].to_pylist())) == 12
