"""Trainer pieces that need no model: table -> TRL rows, the train recipe section, trainer lookup."""

from __future__ import annotations

import pyarrow as pa
import pytest

from prefmill.errors import InputError, RecipeError
from prefmill.recipe import parse_recipe
from prefmill.storage.schemas import conform
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.data import pairs_to_preference, points_to_unpaired, prompts_to_grpo

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}]


def _prompts() -> pa.Table:
    return conform(
        "prompts",
        pa.table(
            {
                "prompt_id": ["p1", "p2"],
                "messages": [CHAT, [{"role": "user", "content": "Say hi."}]],
                "source": ["t", "t"],
                "reference": ["5", None],
                "rubric": [None, None],
                "meta": [None, None],
            }
        ),
    )


def _pairs(**over: list) -> pa.Table:
    cols = {
        "pair_id": ["a", "b", "c"],
        "prompt_id": ["p1", "p2", "p9"],
        "prompt": ["What is 2+3?", "Say hi.", "orphan prompt"],
        "chosen": ["5", "hi", "yes"],
        "rejected": ["6", "no", "no"],
        "chosen_id": ["c1", "c3", "c5"],
        "rejected_id": ["c2", "c4", "c6"],
        "chosen_score": [1.0, 0.8, 1.0],
        "rejected_score": [0.0, 0.3, 0.0],
        "margin": [1.0, 0.5, 1.0],
        "soft_label": [0.9, 0.7, 0.9],
        "uncertainty": [0.0, 0.0, 0.0],
        "criterion": ["overall"] * 3,
        "weight": [1.0, 1.0, 0.0],
        "strategy": ["best_vs_worst"] * 3,
    }
    cols.update(over)
    return conform("pairs", pa.table(cols))


def test_pairs_become_conversational_preference_rows() -> None:
    out = pairs_to_preference(_pairs(), _prompts(), with_margin=True)
    assert out.skipped == {"weight<=0": 1}  # weight 0: left out, and counted
    first, second = out.rows
    assert first["prompt"] == CHAT  # the whole chat (system message too), from the prompts table
    assert first["chosen"] == [{"role": "assistant", "content": "5"}]
    assert first["rejected"] == [{"role": "assistant", "content": "6"}]
    assert first["margin"] == 1.0 and second["margin"] == 0.5
    plain = pairs_to_preference(_pairs(weight=[1.0, 1.0, 1.0]))  # no prompts table: the prompt text
    assert plain.rows[2]["prompt"] == [{"role": "user", "content": "orphan prompt"}]
    assert "margin" not in plain.rows[0]


def test_null_response_is_an_error_naming_the_row() -> None:
    with pytest.raises(InputError, match=r"table 'pairs' row 1: column 'rejected' is null"):
        pairs_to_preference(_pairs(rejected=["6", None, "no"]), _prompts())


def test_points_become_kto_rows() -> None:
    points = conform(
        "points",
        pa.table(
            {
                "point_id": ["x", "y"],
                "prompt_id": ["p1", "p1"],
                "prompt": ["What is 2+3?"] * 2,
                "completion": ["5", "7"],
                "candidate_id": ["c1", "c2"],
                "reward": [1.0, 0.0],
                "label": [True, False],
                "criterion": ["overall"] * 2,
            }
        ),
    )
    rows = points_to_unpaired(points, _prompts()).rows
    assert [r["label"] for r in rows] == [True, False]
    assert rows[1]["completion"] == [{"role": "assistant", "content": "7"}] and rows[1]["prompt"] == CHAT


def test_grpo_rows_need_a_reference() -> None:
    out = prompts_to_grpo(_pairs(), _prompts())
    assert out.rows == [{"prompt": CHAT, "reference": "5"}]
    assert out.skipped == {"no reference": 2}  # p2 has none, p9 is not a known prompt


def test_verifier_reward_scores_completions() -> None:
    from prefmill.trainers.methods.grpo import verifier_reward

    completions = [[{"role": "assistant", "content": "The answer is 5."}], "It is 6", "no idea"]
    assert verifier_reward([None] * 3, completions, reference=["5", "5", "5"]) == [1.0, 0.0, 0.0]


def test_train_section_in_a_recipe() -> None:
    text = (
        "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 2}]\ntrain:\n  method: kto\n  max_steps: 3\n"
    )
    recipe = parse_recipe(text)
    assert recipe.train is not None and recipe.train.method == "kto" and recipe.train.max_steps == 3
    assert recipe.train.input_table() == ("points", None)
    assert TrainConfig(method="dpo", table="pairs@abc").input_table() == ("pairs", "abc")
    bad = text + "  lora:\n    rank: 8\n"
    with pytest.raises(RecipeError, match=r"line 8: train\.lora\.rank: unknown field \(allowed: enabled, r,"):
        parse_recipe(bad)
    with pytest.raises(RecipeError, match=r"train\.method"):
        parse_recipe(text.replace("kto", "ppo"))


def test_train_command_errors_are_one_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from prefmill.cli import run

    recipe = tmp_path / "r.yaml"
    recipe.write_text("dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 2}]\n")
    assert run(["train", str(recipe), "--method", "ppo"]) == 1
    err = capsys.readouterr().err
    assert "--method: Input should be 'dpo', 'kto'" in err and "Traceback" not in err
    assert run(["train", str(recipe), "--root", str(tmp_path / "empty")]) == 1
    assert "no dataset 'd' under" in capsys.readouterr().err  # nothing built yet: said before any work


def test_every_method_is_declared_in_its_module() -> None:
    from typing import get_args

    from prefmill.trainers.methods import METHODS
    from prefmill.trainers.methods.grpo import GRPOOptions

    assert list(METHODS) == ["dpo", "kto", "reward", "grpo", "cpo", "simpo", "orpo", "prm"]
    assert get_args(TrainConfig.model_fields["method"].annotation) == tuple(METHODS)
    for name, method in METHODS.items():
        assert method.name == name and method.table in method.accepts
        assert TrainConfig(method=name).input_table() == (method.table, None)
        assert f"`{name}`" in (TrainConfig.model_fields["method"].description or "")
    # a method's own options join the train section (KTO's, GRPO's and the PRM's)
    assert set(GRPOOptions.model_fields) <= set(TrainConfig.model_fields)
    assert TrainConfig(num_generations=8).num_generations == 8
    assert [m.name for m in METHODS.values() if m.options] == ["kto", "grpo", "prm"]
    assert TrainConfig(method="prm", step_separator=" ки\n").step_separator == " ки\n"
    assert METHODS["prm"].task_type == "TOKEN_CLS" and not METHODS["prm"].generates
    assert not METHODS["reward"].generates and METHODS["reward"].with_margin


def test_method_rows_follow_the_contract() -> None:
    from prefmill.trainers.methods import METHODS

    assert [r["margin"] for r in METHODS["reward"].rows(_pairs(), _prompts(), "pairs@v").rows] == [1.0, 0.5]
    assert "margin" not in METHODS["dpo"].rows(_pairs(), _prompts(), "pairs@v").rows[0]
    assert METHODS["grpo"].rows(_pairs(), _prompts(), "pairs@v").rows == [{"prompt": CHAT, "reference": "5"}]
    with pytest.raises(InputError, match=r"grpo needs the prompts pairs@v was made from"):
        METHODS["grpo"].rows(_pairs(), None, "pairs@v")


def test_train_config_imports_no_trainer_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import prefmill.trainers.config; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'trl', 'transformers', 'peft'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
