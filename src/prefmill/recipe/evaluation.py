"""The `evaluation` section: judges, aggregation, fidelity.

The judge configs are declared by the judge kinds (``prefmill.tasks.evaluation.judges``, one module
per kind); ``JudgeConfig`` and ``JUDGE_MODELS`` are built from them by its registry.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from prefmill.recipe.base import _Section
from prefmill.tasks.evaluation.judges.arithmetic import ArithmeticJudge
from prefmill.tasks.evaluation.judges.code import CodeVerifier
from prefmill.tasks.evaluation.judges.critique_revise import DEFAULT_PRINCIPLES, CritiqueReviseJudge
from prefmill.tasks.evaluation.judges.format import FormatVerifier
from prefmill.tasks.evaluation.judges.heuristic import HeuristicJudge
from prefmill.tasks.evaluation.judges.human import HumanJudge
from prefmill.tasks.evaluation.judges.llm import DEFAULT_CRITERIA, LLMJudge
from prefmill.tasks.evaluation.judges.math import MathVerifier
from prefmill.tasks.evaluation.judges.meta import MetaJudge
from prefmill.tasks.evaluation.judges.registry import JUDGE_MODELS, JudgeConfig
from prefmill.tasks.evaluation.judges.reward_model import RewardModelJudge
from prefmill.tasks.instantiation.config import Aggregation

__all__ = [
    "DEFAULT_CRITERIA", "DEFAULT_PRINCIPLES", "JUDGE_MODELS", "ArithmeticJudge", "CodeVerifier",
    "CritiqueReviseJudge", "EvaluationConfig", "FidelityConfig", "FormatVerifier", "HeuristicJudge",
    "HumanJudge", "JudgeConfig", "LLMJudge", "MathVerifier", "MetaJudge", "RewardModelJudge",
]  # fmt: skip


class FidelityConfig(_Section):
    """Checks of the judges that stop the build before instantiation, and an optional calibration
    file. The gate is on by default: a threshold left at its default applies to the judges whose
    verdicts come from a model (LLM and reward-model judges) once its figure rests on at least
    `min_judged` verdicts; a threshold set in the recipe applies to every judge it can be measured for,
    on any number of verdicts. Set a threshold to null to skip it, or `enforce: false` to keep the
    report and stop nothing."""

    enforce: bool = Field(
        default=True,
        description="Stop the build when a judge fails a threshold (false: the report is kept, nothing "
        "is stopped).",
    )
    min_position_consistency: float | None = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Pair judges: smallest share of pairs judged in both orders whose two verdicts agree.",
    )
    max_first_position_rate: float | None = Field(
        default=0.8,
        ge=0.5,
        le=1,
        description="Pair judges: largest share of decided verdicts favouring the response shown first; a "
        "share below 1 minus it fails too (always answering B is as biased as always answering A).",
    )
    max_parse_failure_rate: float | None = Field(
        default=0.5, ge=0, le=1, description="Largest share of a judge's rows with `parse_error` set."
    )
    min_gold_agreement: float | None = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Smallest agreement with gold (verifier, human verdicts, or the calibration file's "
        "accuracy when there is one); 0.5 is chance.",
    )
    max_length_correlation: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest absolute Spearman correlation of a judge's raw verdicts with length.",
    )
    min_judged: int = Field(
        default=10,
        ge=0,
        description="Default thresholds are checked once their figure rests on at least this many "
        "verdicts (pairs, rows); thresholds set in the recipe are checked on any number.",
    )
    gold_judges: list[str] | None = Field(
        default=None,
        description="Judge names whose verdicts are gold. Default: every verifier but `heuristic`, and "
        "human verdicts.",
    )
    calibration: str | None = Field(
        default=None,
        description="JSONL of labelled pairs {prompt, chosen, rejected} (relative to the recipe): every "
        "LLM judge also judges these, and its accuracy on them is reported as gold agreement.",
    )


class EvaluationConfig(_Section):
    """Stage 2: preference evaluation (adjudicators write rows of `judgments`)."""

    judges: list[JudgeConfig] = Field(
        default_factory=lambda: [ArithmeticJudge(kind="arithmetic"), HeuristicJudge(kind="heuristic")],
        min_length=1,
        description="Adjudicators, each a mapping with `kind` and its options (see the judge sections "
        "below); a bare name such as `arithmetic` is short for `{kind: arithmetic}`.",
    )

    aggregation: Aggregation = Field(
        default="mean",
        description="How instantiation combines a candidate's judges into one score (candidate_scores in "
        "scores.sql): `mean` of the per-judge scores, their `median`, or a majority `vote` of binary "
        "verdicts (a judge votes yes at score >= 0.5; a tie gives 0.5).",
    )

    fidelity: FidelityConfig = Field(
        default_factory=FidelityConfig,
        description="Fidelity thresholds that fail the build, and a calibration file (see below).",
    )

    @field_validator("judges", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"kind": j} if isinstance(j, str) else j for j in v]
        return v

    @property
    def judge_kinds(self) -> list[str]:
        return [j.kind for j in self.judges]
