"""The bundled multi-turn template end to end with the scripted engine (no model): every engine call
carries the whole conversation, the point judge's prompt shows the earlier turns, and the
conversational export's prompt is the full message list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefmill.cli import run
from prefmill.engines.scripted.engine import ScriptedEngine
from prefmill.storage import Store

pytestmark = pytest.mark.slow


def test_multi_turn_template_keeps_the_history(
    tmp_path: Path, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[dict[str, str]]] = []
    generate = ScriptedEngine.generate

    def spy(self: ScriptedEngine, requests: list, progress: object = None) -> list:
        """The scripted engine, recording each request's messages; a point judge's request gets a
        verdict (a longer response scores higher), as a judge model would reply."""
        seen.extend(list(r.messages) for r in requests)
        out = generate(self, requests, progress)
        for r, g in zip(requests, out, strict=True):
            text = r.messages[0]["content"]
            if "[Assistant's response]" in text:
                response = text.split("[Assistant's response]")[1].split("[End of response]")[0]
                score = min(10, 1 + len(response.split()) // 2)
                g.text = json.dumps({"score": score, "rationale": "longer"})
        return out

    monkeypatch.setattr(ScriptedEngine, "generate", spy)
    monkeypatch.setattr(ScriptedEngine, "generate_columns", None)  # every request through the spy
    assert run(["init", "multi-turn", "--dir", str(tmp_path)]) == 0
    recipe = tmp_path / "multi-turn.yaml"
    recipe.write_text(recipe.read_text().replace("transformers:smollm2", "scripted:echo"))
    chats = [json.loads(line) for line in (tmp_path / "multi-turn-prompts.jsonl").read_text().splitlines()]
    assert run(["build", str(recipe), "--root", str(tmp_path / "data")]) == 0

    store = Store(str(tmp_path / "data"))
    prompts = store.read("multi-turn", "prompts").to_pylist()
    conversations = [p["messages"] for p in prompts]
    assert len(conversations) == len(chats) == 6
    assert all(len(c) >= 3 and c[-1]["role"] == "user" for c in conversations)
    # synthesis: one request per sample, each the whole conversation
    synthesis = [m for m in seen if m in conversations]
    assert len(synthesis) == 6 * 3
    # the point judge: one user message that shows every earlier turn, then the last one
    judge = [m[0]["content"] for m in seen if "[Assistant's response]" in m[0]["content"]]
    assert len(judge) == 6 * 3
    assert judge
    first = conversations[0]
    shown = [t for t in judge if first[-1]["content"] in t]
    assert shown and all(
        "[Earlier turns of the conversation, for context]" in t
        and all(f"[{m['role'].capitalize()}] {m['content']}" in t for m in first[:-1])
        for t in shown
    )

    pairs = store.read("multi-turn", "pairs").to_pylist()
    assert pairs
    exported = [
        json.loads(line) for line in (tmp_path / "multi-turn-dpo" / "train.jsonl").read_text().splitlines()
    ]
    assert len(exported) == len(pairs)
    by_id = {p["prompt_id"]: p["messages"] for p in prompts}
    assert sorted(json.dumps(r["prompt"]) for r in exported) == sorted(
        json.dumps(by_id[p["prompt_id"]]) for p in pairs
    )
    assert all(r["chosen"][0]["role"] == "assistant" and len(r["chosen"]) == 1 for r in exported)
