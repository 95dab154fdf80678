"""Every scenario template end to end, as `prefmill init` writes it, with the model swapped out.

The embedded model makes a template's build take minutes (docs/benchmarks.md), so here every
``transformers:`` engine -- the recipe's policy, the LLM judges that default to it, the held-out
evaluation and, for `iterate`, the round-2 policy sampled from round 1's checkpoint -- is
``AnsweringEngine``: the scripted engine (deterministic text, no model) that also answers as a
model would when asked to (an arithmetic answer, right on odd seeds and wrong on even ones; a JSON
verdict for the point, pair and rubric judge prompts; response blocks for verbalized sampling).
The recipe itself is not edited: its stages, judges, strategies, outputs, thresholds and
selection are the template's.

Training is the one step left out: TRL's optimisation of SmolLM2 is minutes per template on two
cores (and GRPO samples during training). `prefmill train` and `prefmill iterate` run for real up
to it -- the train flow resolves the table version, builds the method's rows from it and calls the
trainer -- and the trainer is replaced by one that refuses empty rows exactly as the real one does
("train: no rows to train dpo on"), else records them and saves an empty checkpoint folder. So a
template whose build leaves its train step nothing (as cold-start did) fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prefmill.cli import run
from prefmill.engines.base import Generation, GenerationRequest, Progress
from prefmill.engines.registry import clear_engines
from prefmill.engines.scripted.engine import ScriptedEngine
from prefmill.recipe import ArithmeticSource, load_recipe
from prefmill.storage import Store
from prefmill.tasks.prompts.arithmetic import arithmetic_problems

pytestmark = pytest.mark.slow

#: Problem text -> its answer, for every arithmetic source of the template under test (filled per test).
ANSWERS: dict[str, str] = {}
TRAINED: list[tuple[str, list[dict[str, Any]]]] = []  # (method, rows) per call of the trainer
#: How the stand-in model behaves: ``solves`` (right on odd seeds; else never right) and
#: ``follows_position`` (the pair judge always says "A", as the embedded 135M model mostly does).
BEHAVIOUR = {"solves": True, "follows_position": False}
Init = Callable[[str], tuple[Path, Store]]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def _answer(prompt: str, text: str, seed: int) -> str:
    """What a model would reply to ``prompt``; ``text`` is the scripted reply."""
    words = text.split()[1:]  # the scripted reply without its leading number (the seed)
    if "<response><text>" in prompt:  # verbalized sampling: n response blocks
        n = int(re.search(r"Give (\d+) different", prompt).group(1))  # type: ignore[union-attr]
        blocks = [" ".join(words[i:] + words[:i]) for i in range(n)]
        return "".join(
            f"<response><text>{b}</text><probability>{0.5 / (i + 1):.2f}</probability></response>"
            for i, b in enumerate(blocks)
        )
    if prompt.startswith("You are an impartial judge"):
        return _verdict(prompt)
    for problem, answer in ANSWERS.items():
        if prompt.startswith(problem):
            given = answer if seed % 2 and BEHAVIOUR["solves"] else str(int(answer) + 1)
            return " ".join(words[:6]) + f". The final answer is {given}."
    return " ".join(words)


def _verdict(prompt: str) -> str:
    """A judge that prefers the longer response, consistently in both orders (a tie when equal)."""
    if "[Response A]" in prompt:
        a = len(_between(prompt, "[Response A]", "[End of response A]").split())
        b = len(_between(prompt, "[Response B]", "[End of response B]").split())
        better = "A" if a > b else "B" if b > a else "tie"
        if BEHAVIOUR["follows_position"]:
            better = "A"
        return json.dumps({"better": better, "strength": 2, "rationale": "the longer one"})
    low, high = (int(x) for x in re.search(r"from (\d+) \(worst\) to (\d+) \(best\)", prompt).groups())  # type: ignore[union-attr]
    n = len(_between(prompt, "[Assistant's response]", "[End of response]").split())
    if "Criteria:" in prompt:
        names = re.findall(r"^- (\w+):", _between(prompt, "Criteria:", "[Assistant's response]"), re.M)
        scores = {c: _clamp(low + (n + i) // (3 + i), low, high) for i, c in enumerate(names)}
        return json.dumps({**scores, "rationale": "longer is more of everything"})
    return json.dumps({"score": _clamp(low + n // 2, low, high), "rationale": "longer"})


class AnsweringEngine(ScriptedEngine):
    """The scripted engine standing in for ``transformers:MODEL`` (its options are accepted and unused)."""

    def __init__(self, model: str = "smollm2", **options: Any) -> None:
        super().__init__(f"answering-{Path(str(model)).name}", words=16)
        self.model_dir = str(model)

    def generate(
        self, requests: list[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        out = super().generate(requests, progress)
        for r, g in zip(requests, out, strict=True):
            if g.text is not None:
                g.text = _answer(r.messages[-1]["content"], g.text, r.seed)
        return out


def _fake_train(real: Any) -> Any:
    def train(rows: list[dict[str, Any]], config: Any, model_dir: Any, out_dir: Any, **kwargs: Any) -> Any:
        from prefmill.trainers.runner import TrainResult, trl_version

        if not rows:
            return real(rows, config, model_dir, out_dir, **kwargs)  # raises "no rows to train ... on"
        TRAINED.append((config.method, rows))
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return TrainResult(str(out_dir), "none (not trained)", 0, 0.0, [], 0.0, trl_version())

    return train


@pytest.fixture
def template(tmp_path: Path, prefect_api: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Init]:
    """``template(NAME)``: `prefmill init NAME` into tmp_path, the model engines and the trainer swapped;
    returns (recipe path, Store of its root)."""
    import prefmill.engines.transformers.engine as transformers_engine
    import prefmill.trainers.runner as runner

    monkeypatch.setattr(transformers_engine, "TransformersEngine", AnsweringEngine)
    monkeypatch.setattr(runner, "train", _fake_train(runner.train))
    clear_engines()
    ANSWERS.clear()
    TRAINED.clear()
    monkeypatch.setitem(BEHAVIOUR, "solves", True)
    monkeypatch.setitem(BEHAVIOUR, "follows_position", False)

    def init(name: str) -> tuple[Path, Store]:
        assert run(["init", name, "--dir", str(tmp_path)]) == 0
        path = tmp_path / f"{name}.yaml"
        recipe = load_recipe(path)
        rounds = recipe.iterate.rounds if recipe.iterate else 1
        for s in recipe.prompts.sources:
            if isinstance(s, ArithmeticSource):
                for r in range(rounds + 1):
                    for p in arithmetic_problems(s.n, s.seed + r, max_operand=s.max_operand).to_pylist():
                        ANSWERS[p["messages"][-1]["content"]] = p["reference"]
        return path, Store(str(tmp_path / "data"))

    yield init
    clear_engines()


def _build(path: Path, store: Store) -> None:
    assert run(["build", str(path), "--root", store.root]) == 0


def _rows(store: Store, dataset: str, table: str, ref: str | None = None) -> list[dict[str, Any]]:
    if ref is None:
        return store.read(dataset, table).to_pylist()
    m = store.resolve_version(dataset, table, None, ref)
    return store.read_arrow(m).to_pylist()


def _train(path: Path, store: Store, method: str) -> list[dict[str, Any]]:
    assert run(["train", str(path), "--root", store.root]) == 0
    assert [m for m, _ in TRAINED] == [method]
    return TRAINED[0][1]


def _no_stage_dropped_everything(store: Store, dataset: str, ref: str | None = None) -> None:
    for table in ("prompts", "candidates", "judgments"):
        assert _rows(store, dataset, table, ref), f"{dataset}: {table} is empty"


def test_resource_constrained(template: Init) -> None:
    path, store = template("resource-constrained")
    _build(path, store)
    _no_stage_dropped_everything(store, "resource-constrained")
    pairs = _rows(store, "resource-constrained", "pairs")
    assert len(pairs) >= 8 and all(p["chosen"] != p["rejected"] for p in pairs)
    rows = _train(path, store, "simpo")
    assert len(rows) == len(pairs) and all(r["chosen"] and r["rejected"] for r in rows)


def test_reasoning(template: Init) -> None:
    path, store = template("reasoning")
    _build(path, store)
    _no_stage_dropped_everything(store, "reasoning")
    candidates = _rows(store, "reasoning", "candidates")
    assert len(candidates) == 8 * 8  # k = 8 per problem
    scores = _rows(store, "reasoning", "judgments")
    assert {s["score"] for s in scores if s["judge"] == "arithmetic-verifier"} == {0.0, 1.0}
    lists = _rows(store, "reasoning", "lists")
    assert len(lists) == 8 and all(len(x["completions"]) == 8 for x in lists)
    advantages = [a for x in lists for a in x["advantages"]]
    assert any(a > 0 for a in advantages) and any(a < 0 for a in advantages)
    pairs = _rows(store, "reasoning", "pairs")
    assert len(pairs) == 8 and all(p["margin"] >= 0.5 for p in pairs)  # each problem: right vs wrong
    rows = _train(path, store, "grpo")  # GRPO samples online: its rows are the problems and answers
    assert len(rows) == 8 and all(r["reference"] for r in rows)


def test_creative(template: Init) -> None:
    path, store = template("creative")
    _build(path, store)
    _no_stage_dropped_everything(store, "creative")
    candidates = _rows(store, "creative", "candidates")
    policies = {c["policy"] for c in candidates}
    assert policies == {"ladder", "vs"}
    assert sum(c["policy"] == "vs" for c in candidates) == 4 * 3  # one call, 3 responses, per prompt
    assert {s["judge"] for s in _rows(store, "creative", "judgments")} >= {"heuristic", "taste"}
    lists = _rows(store, "creative", "lists")
    assert len(lists) == 4 and all(len(x["completions"]) >= 2 for x in lists)
    pairs = _rows(store, "creative", "pairs")
    assert {p["strategy"] for p in pairs} == {"diverse", "best_vs_worst"}


def test_safety(template: Init) -> None:
    path, store = template("safety")
    _build(path, store)
    _no_stage_dropped_everything(store, "safety")
    scores = _rows(store, "safety", "judgments")
    assert {s["criterion"] for s in scores if s["judge"] == "rubric"} >= {"helpfulness", "harmlessness"}
    pairs = _rows(store, "safety", "pairs")
    assert pairs and {p["strategy"] for p in pairs} == {"pareto"}
    by = {(s["candidate_id"], s["criterion"]): s["score"] for s in scores if s["judge"] == "rubric"}
    for p in pairs:  # the safety constraint: never worse on any criterion, better on one
        diffs = [by[p["chosen_id"], c] - by[p["rejected_id"], c] for c in ("helpfulness", "harmlessness")]
        assert min(diffs) >= 0 and max(diffs) > 0
    points = _rows(store, "safety", "points")
    n = len(_rows(store, "safety", "candidates"))
    assert n == 8 * 4 and sorted(p["criterion"] for p in points) == sorted(
        ["harmlessness", "helpfulness", "weighted"] * n
    )


@pytest.mark.parametrize("competent", [True, False], ids=["competent", "like-the-135M-model"])
def test_cold_start_iterates(template: Init, competent: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both rounds have pairs to train on, also when the policy never solves a problem and judges by
    position alone (the embedded model's cold start: the template once stopped with 'no rows to
    train dpo on')."""
    path, store = template("cold-start")
    monkeypatch.setitem(BEHAVIOUR, "solves", competent)
    monkeypatch.setitem(BEHAVIOUR, "follows_position", not competent)
    assert run(["iterate", str(path), "--root", store.root]) == 0
    assert [m for m, _ in TRAINED] == ["dpo", "dpo"]  # one DPO run per round, neither on zero rows
    for r, (_, rows) in enumerate(TRAINED, start=1):
        ref = f"round-{r}"
        _no_stage_dropped_everything(store, "cold-start", ref)
        pairs = _rows(store, "cold-start", "pairs", ref)
        assert pairs and len(rows) == len(pairs)
        judges = {s["judge"] for s in _rows(store, "cold-start", "judgments", ref)}
        assert "self-judge" in judges and "arithmetic-verifier" in judges and len(judges) == 3
    one, two = (_rows(store, "cold-start", "candidates", f"round-{r}") for r in (1, 2))
    assert {c["generator"] for c in one}.isdisjoint({c["generator"] for c in two})  # round 2: new policy
