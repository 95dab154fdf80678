"""The `prm` judge without a model: its folder check (one line naming the field, before any work) and
its version fingerprint. Scoring with a trained PRM is tests/integration/test_prm.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefmill.errors import PrefmillError
from prefmill.recipe import parse_recipe
from prefmill.tasks.evaluation.judges.prm import PRMJudge, fingerprint


def _folder(path: Path, archs: list[str], labels: int) -> str:
    path.mkdir()
    config = {"architectures": archs, "id2label": {str(i): str(i) for i in range(labels)}}
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


def test_only_a_two_label_token_classifier_folder_is_a_prm(tmp_path: Path) -> None:
    good = _folder(tmp_path / "good", ["LlamaForTokenClassification"], 2)
    fp = fingerprint(PRMJudge(kind="prm", model=good))
    assert fp["parser"] and len(fp["model"]) == 64
    (Path(good) / "model.safetensors").write_bytes(b"x" * 8)  # other weights: another version
    assert fingerprint(PRMJudge(kind="prm", model=good))["model"] != fp["model"]
    rm = _folder(tmp_path / "rm", ["LlamaForSequenceClassification"], 1)
    for path, says in [
        (rm, "holds a LlamaForSequenceClassification with 1 labels"),
        (str(tmp_path / "absent"), "is not a folder"),
        (str(tmp_path), "has no config.json"),
    ]:
        with pytest.raises(PrefmillError, match=r"^evaluation\.judges \(prm\)\.model: .*") as err:
            fingerprint(PRMJudge(kind="prm", model=path))
        assert says in str(err.value) and "\n" not in str(err.value)


def test_a_recipe_with_a_prm_judge(tmp_path: Path) -> None:
    good = _folder(tmp_path / "prm-a", ["Qwen2ForTokenClassification"], 2)
    recipe = parse_recipe(
        "dataset: d\nprompts:\n  sources: [{kind: arithmetic, n: 1}]\nsteps: {segmenter: lines}\n"
        f"evaluation:\n  judges: [{{kind: prm, model: {good}, aggregate: last}}]\n"
    )
    (judge,) = recipe.evaluation.judges
    assert judge.judge_name == "prm:prm-a" and judge.aggregate == "last"
    from prefmill.flows.plans.evaluation import evaluation_config, judge_configs

    assert judge_configs(recipe)[0].segmenter == recipe.steps  # a step judge: it gets the segmenter
    assert evaluation_config(recipe)["llm"]["prm:prm-a"]["model"] == fingerprint(judge)["model"]
