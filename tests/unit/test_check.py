"""`prefmill check RECIPE`: every bundled template passes and prints its plan; a bad file, engine spec
or field is exit 1 with one line; the expected model calls follow the recipe (no Prefect, no model)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from prefmill.cli import run
from prefmill.commands.check import plan_of
from prefmill.recipe import parse_recipe
from prefmill.recipes import TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_passes_check(template: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(str(resources.files("prefmill.recipes").joinpath(f"{template}.yaml")))
    assert run(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path} is valid" in " ".join(out.split()) and "synthesis" in out and "evaluation" in out


def test_the_plan_counts_shards_rows_and_calls(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(10)))
    recipe = parse_recipe(
        """
dataset: planned
shard_size: 4
prompts: {sources: [{kind: file, path: p.jsonl}, {kind: arithmetic, n: 2}]}
synthesis: {k: 4}
evaluation:
  judges:
    - arithmetic
    - {kind: llm, mode: pair}
    - {kind: llm, name: capped, mode: pair, max_pairs_per_prompt: 2, swap: false}
    - {kind: llm}
instantiation: {outputs: [pairs, points]}
""",
        base_dir=tmp_path,
    )
    stages = {(s.stage, s.table): s for s in plan_of(recipe)}
    assert stages[("prompts", "prompts")].rows == 12
    synthesis = stages[("synthesis", "candidates")]
    assert (synthesis.shards, synthesis.rows, synthesis.calls) == (3, 48, 48)
    # pair judge: 12 prompts x C(4, 2) pairs x 2 orders; capped: 12 x 2 x 1; point judge: 48 candidates
    assert stages[("evaluation", "judgments")].calls == 12 * 6 * 2 + 12 * 2 + 48
    assert [t for s, t in stages if s == "instantiation"] == ["pairs", "points"]


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("prompts: {sources: [{kind: file, path: missing.jsonl}]}", "prompt file not found"),
        ("prompts: {sources: [{kind: arithmetic, n: 2}]}\nsynthesis: {engine: 'nope:x'}", "nope"),
        ("prompts: {sources: [{kind: arithmetic, n: 2}]}\nsynthesis: {k: 0}", "synthesis.k"),
    ],
)
def test_bad_input_is_exit_1_with_one_line(
    tmp_path: Path, recipe: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("dataset: bad\n" + recipe + "\n")
    assert run(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in " ".join(err.split())
