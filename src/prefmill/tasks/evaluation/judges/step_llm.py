"""Judge kind `step_llm`: a judge model names the first wrong step of a solution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits
from prefmill.tasks.steps.config import StepsConfig

if TYPE_CHECKING:
    import pyarrow as pa


class StepLLMJudge(JudgeSection):
    """A judge model reads the numbered steps of a response (and the prompt's `reference`, if any) and
    names the first wrong one (`{"first_error": N}`, 0: none). One row per step: `score` 1 before the
    named step, 0 from it on (`granularity` `step`, `unit_index` the step); an unusable reply is a
    parse error on every step row. Needs the recipe's `steps` section."""

    kind: Literal["step_llm"] = Field(description="`step_llm`.")
    name: str | None = Field(default=None, description="The `judge` column (default `step-llm:<engine>`).")
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    template: str | None = Field(
        default=None,
        description="A Jinja template replacing the built-in `first_error` one (recipe-relative).",
    )
    temperature: float = Field(default=0.0, ge=0, le=5, description="Judge sampling temperature.")
    max_new_tokens: int = Field(default=32, ge=1, le=32768, description="Longest reply.")
    structured: bool = Field(
        default=True, description="Constrain the reply to its JSON schema where the engine can."
    )
    seed: int = Field(default=0, description="Seed of the judge's sampling (with the candidate id).")
    segmenter: StepsConfig | None = Field(
        default=None, description="How responses are cut into steps; default: the recipe's `steps` section."
    )

    @property
    def judge_name(self) -> str:
        return self.name or f"step-llm:{self.engine}"


def run(config: StepLLMJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.step_judge import step_llm_judge

    return step_llm_judge(config, cands)


def fingerprint(config: StepLLMJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.llm_judge import template_fingerprint

    segmenter = None if config.segmenter is None else config.segmenter.model_dump(mode="json")
    return {**template_fingerprint(config, {"template": "first_error"}), "segmenter": segmenter}


KIND = JudgeKind(
    config=StepLLMJudge,
    traits=JudgeTraits(
        summary="a judge model names the first wrong step",
        row_kind="llm",
        engine=True,
        templates=("first_error",),
        template_fields=("template",),
        granularity="step",
        order=112,
    ),
    run=run,
    fingerprint=fingerprint,
)
