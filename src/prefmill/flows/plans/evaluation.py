"""The evaluation stage's plan: what decides the `judgments` version (every judge's config, LLM
judges' templates, human verdict and calibration files' content) and the checks made before any work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefmill.engines.registry import parse_spec
from prefmill.errors import InputError, RecipeError
from prefmill.recipe import FidelityConfig, JudgeConfig, Recipe, file_digest
from prefmill.tasks.evaluation.judges.human import HumanJudge
from prefmill.tasks.evaluation.judges.registry import fingerprint, judge_traits, resolve_paths


# -- which judges do what (traits of their kind: tasks/evaluation/judges/) ------------------------
def runs_judge_model(judge: Any) -> bool:
    """A judge run by a judge model (engine checked before any work)."""
    return judge_traits(judge).engine


def is_calibrated(judge: Any) -> bool:
    """A judge run on the calibration pairs."""
    return judge_traits(judge).calibrated


def is_human(judge: Any) -> bool:
    """Verdicts imported from a file (one extra shard) instead of judged per shard."""
    return judge_traits(judge).output == "extra_shard"


# -- the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationPlan:
    """The evaluation stage, resolved once per build: ``config`` decides the judgments version;
    ``judges`` have absolute template paths; ``human`` lists the verdict files (path, format);
    ``calibration`` is the calibration file's path; ``prices`` (the recipe's, for judge engines' cost)
    changes cost, not rows, and is left out of ``config``."""

    dataset: str
    config: dict[str, Any]
    judges: tuple[JudgeConfig, ...]
    human: tuple[tuple[str, str | None], ...]
    calibration: str | None
    fidelity: FidelityConfig
    prices: dict[str, Any] | None = None


def judge_configs(recipe: Recipe) -> list[Any]:
    """The recipe's judges with template paths made absolute (relative to the recipe's folder);
    step-level judges without a `segmenter` get the recipe's `steps` section (an error without one)."""
    out = [resolve_paths(j, recipe.base_dir) for j in recipe.evaluation.judges]
    for i, j in enumerate(out):
        if judge_traits(j).granularity == "step" and getattr(j, "segmenter", None) is None:
            if recipe.steps is None:
                raise RecipeError(
                    f"evaluation.judges[{i}] ({j.kind}): step labels need steps; add a `steps` section "
                    "to the recipe (e.g. `steps: {segmenter: lines}`) or set the judge's `segmenter`"
                )
            out[i] = j.model_copy(update={"segmenter": recipe.steps})
    return out


def evaluation_config(recipe: Recipe) -> dict[str, Any]:
    """What decides the judgments version: every judge's full config, in order; for LLM judges also
    the text of their templates and the parser version; the calibration file's content."""
    config: dict[str, Any] = {"judges": [j.model_dump(mode="json") for j in recipe.evaluation.judges]}
    llm = {j.judge_name: fp for j in judge_configs(recipe) if (fp := fingerprint(j)) is not None}
    if llm:
        config["llm"] = llm
    human = [j for j in recipe.evaluation.judges if is_human(j)]
    if human:  # the verdicts' content, not the file name, decides the version
        config["human_files"] = [_human_digest(recipe, j) for j in human]
    if (calibration := recipe.evaluation.fidelity.calibration) is not None:
        path = recipe.resolve_path(calibration)
        if not path.is_file():
            raise RecipeError(f"evaluation.fidelity.calibration: no file {path}; fix the path in the recipe")
        config["calibration_sha256"] = file_digest(path)
    return config


def plan_evaluation(recipe: Recipe) -> EvaluationPlan:
    calibration = recipe.evaluation.fidelity.calibration
    return EvaluationPlan(
        dataset=recipe.dataset,
        config=evaluation_config(recipe),
        judges=tuple(judge_configs(recipe)),
        human=tuple(
            (str(recipe.resolve_path(j.path)), j.format) for j in recipe.evaluation.judges if is_human(j)
        ),
        calibration=str(recipe.resolve_path(calibration)) if calibration is not None else None,
        fidelity=recipe.evaluation.fidelity,
        prices={m: p.model_dump() for m, p in recipe.prices.items()} or None,
    )


def check_judges_config(recipe: Recipe) -> None:
    """Fail before any work: judge engines parse, templates load and compile, names are unique."""
    names: dict[str, int] = {}
    for i, j in enumerate(judge_configs(recipe)):
        if not runs_judge_model(j):
            continue
        if j.judge_name in names:
            raise RecipeError(
                f"evaluation.judges[{i}]: judge name '{j.judge_name}' is also the name of "
                f"evaluation.judges[{names[j.judge_name]}]; give one of them another `name`"
            )
        names[j.judge_name] = i
        if getattr(j, "min_score", 0) >= getattr(j, "max_score", 1):
            raise RecipeError(f"evaluation.judges[{i}]: min_score must be below max_score")
        parse_spec(j.engine)
    evaluation_config(recipe)


def _human_digest(recipe: Recipe, judge: HumanJudge) -> str:
    path = recipe.resolve_path(judge.path)
    try:
        return file_digest(path)
    except OSError as exc:
        raise InputError(
            f"evaluation.judges[human].path: cannot read {path} ({exc.strerror}); fix the path"
        ) from None
