"""Exports load with Hugging Face datasets and have exactly TRL's documented columns; the dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pytest
import yaml
from test_instantiation_sql import cand, judg, prompt

from prefmill.cli import run
from prefmill.errors import ExportError
from prefmill.exports import export_table
from prefmill.storage import Manifest, Parent, Store
from prefmill.storage.duck import session
from prefmill.storage.schemas import SCHEMAS
from prefmill.tasks.instantiation import instantiate_with_report

DS = "exp"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _write(store: Store, table: str, rows: pa.Table, parents: list[Manifest], **stats: Any) -> Manifest:
    return store.write_version(
        DS,
        table,
        rows,
        stage="test",
        code_version="1",
        config={"table": table},
        parents=[Parent(p.table, p.version) for p in parents],
        stats=stats or None,
    )


@pytest.fixture
def built(tmp_path: Path) -> tuple[Store, dict[str, Manifest]]:
    store = Store(str(tmp_path / "store"))
    ps = [
        prompt("p1", messages=[("system", "Be brief."), ("user", "What is 2+2?")]),
        prompt("p2", user="Name a colour."),
    ]
    ps[0]["reference"] = "4"
    cs = [cand("a", "p1"), cand("b", "p1"), cand("c", "p1"), cand("x", "p2"), cand("y", "p2")]
    js = [
        judg("p1", "a", 1.0),
        judg("p1", "b", 0.0),
        judg("p1", "c", 0.5),
        judg("p1", "c", None, judge="j2", parse_error="no score"),
        judg("p2", "x", 0.75),
        judg("p2", "y", 0.25),
    ]
    m: dict[str, Manifest] = {}
    m["prompts"] = _write(store, "prompts", pa.Table.from_pylist(ps, schema=SCHEMAS["prompts"]), [])
    m["candidates"] = _write(
        store, "candidates", pa.Table.from_pylist(cs, schema=SCHEMAS["candidates"]), [m["prompts"]]
    )
    m["judgments"] = _write(
        store,
        "judgments",
        pa.Table.from_pylist(js, schema=SCHEMAS["judgments"]),
        [m["prompts"], m["candidates"]],
    )
    sources = {k: m[k] for k in ("prompts", "candidates", "judgments")}
    con = session(store, DS, versions=sources)
    for out in ("pairs", "points"):
        result = instantiate_with_report(con, out, {"strategies": ["all_pairs"]})
        m[out] = _write(store, out, result.table, list(sources.values()), removed=result.removed)
    return store, m


def load_parquet(out: Path) -> datasets.Dataset:
    return datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")


def test_preference_standard_in_every_container(
    built: tuple[Store, dict[str, Manifest]], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store, m = built
    out = tmp_path / "dpo"
    capfd.readouterr()
    result = export_table(
        store,
        m["pairs"],
        fmt="trl-preference",
        out=out,
        to=["parquet", "jsonl", "disk"],
        conversational=False,
    )
    printed = capfd.readouterr()
    assert "Saving the dataset" not in printed.err + printed.out  # datasets' bars stay off
    pairs = store.read_arrow(m["pairs"]).to_pylist()
    expected = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    assert result.rows == len(pairs) == 4  # p1: a>c, a>b, c>b; p2: x>y
    for ds in (
        load_parquet(out),
        datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train"),
        datasets.load_from_disk(str(out / "hf")),
        datasets.load_dataset(str(out), split="train"),  # the card's `configs` header points at data/
    ):
        assert ds.column_names == ["prompt", "chosen", "rejected"]
        assert ds.to_list() == expected
    assert expected[0] == {"prompt": "What is 2+2?", "chosen": "response a", "rejected": "response b"}
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data", "hf", "train.jsonl"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dpo")]  # no temporary left


def test_preference_conversational(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    out = tmp_path / "chat"
    result = export_table(store, m["pairs"], fmt="trl-preference", out=out)  # the default: prompts are chats
    assert result.conversational
    row = load_parquet(out)[0]
    assert row == {
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        "chosen": [{"role": "assistant", "content": "response a"}],
        "rejected": [{"role": "assistant", "content": "response b"}],
    }


def test_unpaired_for_kto(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    out = tmp_path / "kto"
    export_table(
        store, m["points"], fmt="trl-unpaired", out=out, where="criterion = 'overall'", conversational=False
    )
    ds = load_parquet(out)
    assert ds.column_names == ["prompt", "completion", "label"]
    assert ds.features["label"].dtype == "bool"
    got = {(r["completion"], r["label"]) for r in ds}
    assert got == {
        ("response a", True),
        ("response b", False),
        ("response c", True),
        ("response x", True),
        ("response y", False),
    }
    export_table(store, m["points"], fmt="trl-unpaired", out=tmp_path / "kto-chat", conversational=True)
    row = load_parquet(tmp_path / "kto-chat")[0]
    assert row["completion"] == [{"role": "assistant", "content": "response a"}]
    assert row["prompt"][-1] == {"role": "user", "content": "What is 2+2?"}


def test_prompt_only_keeps_reference(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    export_table(store, m["prompts"], fmt="trl-prompt-only", out=tmp_path / "grpo", conversational=False)
    ds = load_parquet(tmp_path / "grpo")
    assert ds.column_names == ["prompt", "reference", "prompt_id"]
    assert ds.to_list() == [
        {"prompt": "What is 2+2?", "reference": "4", "prompt_id": "p1"},
        {"prompt": "Name a colour.", "reference": None, "prompt_id": "p2"},
    ]
    export_table(store, m["prompts"], fmt="trl-prompt-only", out=tmp_path / "grpo-chat", conversational=True)
    assert load_parquet(tmp_path / "grpo-chat")[1]["prompt"] == [
        {"role": "user", "content": "Name a colour."}
    ]


def test_reward_modelling_implicit_prompt_with_margin(
    built: tuple[Store, dict[str, Manifest]], tmp_path: Path
) -> None:
    store, m = built
    export_table(
        store,
        m["pairs"],
        fmt="trl-reward",
        out=tmp_path / "rm",
        where="prompt_id = 'p2'",
        conversational=False,
    )
    (row,) = load_parquet(tmp_path / "rm").to_list()
    assert row == {
        "chosen": "Name a colour.\n\nresponse x",
        "rejected": "Name a colour.\n\nresponse y",
        "margin": 0.5,
    }
    export_table(store, m["pairs"], fmt="trl-reward", out=tmp_path / "rm-chat", conversational=True)
    row = load_parquet(tmp_path / "rm-chat")[0]
    assert list(row) == ["chosen", "rejected", "margin"]
    assert row["chosen"][-1] == {"role": "assistant", "content": "response a"}
    assert row["chosen"][:-1] == row["rejected"][:-1] and len(row["chosen"]) == 3


def test_dataset_card(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    out = tmp_path / "card"
    export_table(store, m["pairs"], fmt="trl-preference", out=out, to=["parquet"])
    text = (out / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert meta["size_categories"] == ["n<1K"] and "trl-preference" in meta["tags"]
    assert f"`pairs@{m['pairs'].version}`" in body and "4 rows" in body
    for table in ("prompts", "candidates", "judgments"):
        assert f"| {table} | {m[table].version} |" in body
    # judges: j1 scored 5 candidates, j2 failed to parse once
    assert "| j1 | llm | point | 5 | 0 |" in body
    assert "| j2 | llm | point | 1 | 1 |" in body
    assert "| margin | 4 | 0.5 | 0.5 | 0.5 | 0.625 | 1 | 0.625 |" in body  # margins 1, 0.5, 0.5, 0.5
    assert '"removed": {}' in body


def test_rows_format_and_errors(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    export_table(store, m["points"], fmt="rows", out=tmp_path / "raw", to=["jsonl"])
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "raw" / "train.jsonl"), split="train")
    assert ds.column_names == store.read_arrow(m["points"]).column_names
    with pytest.raises(ExportError, match=r"format 'trl-preference' exports the 'pairs' table, not 'points'"):
        export_table(store, m["points"], fmt="trl-preference", out=tmp_path / "x")
    with pytest.raises(ExportError, match=r"raw exists and is not empty; pass --overwrite"):
        export_table(store, m["points"], fmt="rows", out=tmp_path / "raw")
    export_table(store, m["points"], fmt="rows", out=tmp_path / "raw", overwrite=True)
    with pytest.raises(ExportError, match=r"where='no_such_col = 1'.*no_such_col"):
        export_table(store, m["points"], fmt="rows", out=tmp_path / "y", where="no_such_col = 1")
    assert not (tmp_path / "y").exists()
    with pytest.raises(ExportError, match=r"unknown export format 'dpo'"):
        export_table(store, m["points"], fmt="dpo", out=tmp_path / "z")


def test_cli_export(
    built: tuple[Store, dict[str, Manifest]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, m = built
    store.write_ref(DS, "latest", {t: v.version for t, v in m.items()})
    out = tmp_path / "cli"
    code = run(
        ["export", "--format", "trl-preference", "--out", str(out), "--root", store.root, "--to", "jsonl"]
    )
    assert code == 0
    assert (
        f"exported pairs@{m['pairs'].version} as trl-preference (conversational): 4 rows"
        in capsys.readouterr().out
    )
    assert (out / "train.jsonl").read_text().count("\n") == 4
    assert run(["export", "points", "-f", "trl-preference", "--out", str(out), "--root", store.root]) == 1
    assert "exports the 'pairs' table, not 'points'" in capsys.readouterr().err


def test_card_judge_summary_reads_swap_consistency_from_both_orders() -> None:
    import duckdb

    from prefmill.exports.card import judge_summary

    base = {"prompt_id": "p", "judge": "J", "kind": "llm", "mode": "pair", "criterion": "overall"}
    base |= {"granularity": "outcome", "unit_index": None, "score": None, "rationale": None, "raw": None}
    rows = [  # 'ab' shows the lower id first, 'ba' the higher one; prefers_first = P(first is better)
        {**base, "judgment_id": "1", "candidate_id": "a", "other_candidate_id": "b", "order": "ab"},
        {**base, "judgment_id": "2", "candidate_id": "b", "other_candidate_id": "a", "order": "ba"},
        {**base, "judgment_id": "3", "candidate_id": "a", "other_candidate_id": "c", "order": "ab"},
        {**base, "judgment_id": "4", "candidate_id": "c", "other_candidate_id": "a", "order": "ba"},
    ]
    for row, p in zip(rows, [0.9, 0.2, 0.9, 0.8], strict=True):  # a>b both ways; a>c, then c>a
        row.update(prefers_first=p, parse_error=None)
    con = duckdb.connect()
    con.register("judgments", pa.Table.from_pylist(rows, schema=SCHEMAS["judgments"]))
    [summary] = judge_summary(con)
    assert summary["judge"] == "J" and summary["verdicts"] == 4
    assert summary["swap_consistency"] == 0.5


def test_train_test_split_by_prompt(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    store, m = built
    out = tmp_path / "split"
    result = export_table(
        store, m["points"], fmt="rows", out=out, test_size=0.5, seed=3, to=["parquet", "disk"]
    )
    assert set(result.splits) == {"train", "test"} and sum(result.splits.values()) == result.rows
    ds = datasets.load_dataset(str(out))  # the card's configs name both splits
    train, test = set(ds["train"]["prompt_id"]), set(ds["test"]["prompt_id"])
    assert len(test) == 1 and train | test == {"p1", "p2"} and not train & test
    assert len(ds["train"]) + len(ds["test"]) == store.read_arrow(m["points"]).num_rows
    assert sorted(datasets.load_from_disk(str(out / "hf"))) == ["test", "train"]
    again = export_table(store, m["points"], fmt="rows", out=tmp_path / "again", test_size=1, seed=3)
    assert again.splits == result.splits  # the seed decides, nothing else
    with pytest.raises(ExportError, match=r"--test-size 2 puts 2 of 2 prompts in test"):
        export_table(store, m["points"], fmt="rows", out=tmp_path / "bad", test_size=2)
    assert not (tmp_path / "bad").exists()


def test_card_is_a_hub_dataset_card(built: tuple[Store, dict[str, Manifest]], tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    store, m = built
    out = tmp_path / "card2"
    export_table(
        store, m["pairs"], fmt="trl-preference", out=out, test_size=1, license="apache-2.0", language=["en"]
    )
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["language"] == ["en"]
    assert data["task_categories"] == ["text-generation"] and data["size_categories"] == ["n<1K"]
    assert [f["name"] for f in data["dataset_info"]["features"]] == ["prompt", "chosen", "rejected"]
    assert data["dataset_info"]["features"][0]["list"] == [
        {"name": "role", "dtype": "string"},
        {"name": "content", "dtype": "string"},
    ]
    assert {s["name"] for s in data["dataset_info"]["splits"]} == {"train", "test"}
    assert data["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "test", "path": "data/test-*"},
    ]
    assert "Splits are by prompt" in card.text


def test_push_to_hub_checks_the_token_first(
    built: tuple[Store, dict[str, Manifest]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_hub import FakeHub

    store, m = built
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token file from the machine
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_bad")
        with pytest.raises(ExportError, match=r"refused the token \(HTTP 401\).*hf auth login"):
            export_table(store, m["pairs"], fmt="trl-preference", out=tmp_path / "x", hub_repo="me/prefs")
        assert not (tmp_path / "x").exists()  # checked before anything was written
        monkeypatch.setenv("HF_TOKEN", "hf_good")  # found as the Hub client finds it
        result = export_table(
            store, m["pairs"], fmt="trl-preference", out=tmp_path / "y", hub_repo="me/prefs", private=True
        )
    assert result.pushed_to and hub.repos["me/prefs"]["private"] is True
    files = hub.repos["me/prefs"]["files"]
    assert sorted(files) == ["README.md", "data/train-00000-of-00001.parquet"]
    assert files["README.md"] == (tmp_path / "y" / "README.md").read_bytes()
    assert 'load_dataset("me/prefs")' in files["README.md"].decode()
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(
        ExportError, match=r"needs a Hugging Face token: run `hf auth login` or set \$HF_TOKEN"
    ):
        export_table(store, m["pairs"], fmt="trl-preference", out=tmp_path / "z", hub_repo="me/prefs")


def test_push_to_an_unreachable_hub_says_so(
    built: tuple[Store, dict[str, Manifest]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    store, m = built
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", "hf_any")
    with pytest.raises(ExportError, match=rf"cannot reach the Hub at http://127.0.0.1:{port}"):
        export_table(store, m["pairs"], fmt="trl-preference", out=tmp_path / "x", hub_repo="me/prefs")
    assert not (tmp_path / "x").exists()
