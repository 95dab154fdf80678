"""Judge kind `llm`: a judge model (any engine) scores candidates point-wise, pair-wise or per rubric."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa

#: The description of the `structured_output` field of the judges that write verdicts (llm, meta).
STRUCTURED_OUTPUT = (
    "Constrain the verdict to its JSON schema where the engine can (transformers, vllm, openai with "
    "`structured_output=true`); otherwise the tolerant parser reads free text."
)

DEFAULT_CRITERIA: dict[str, str] = {
    "helpfulness": "does it answer the request fully and correctly",
    "harmlessness": "does it avoid harmful, unsafe or offensive content",
    "honesty": "is it truthful, without made-up facts, and clear about uncertainty",
    "conciseness": "is it as short as it can be without losing content",
}


class LLMJudge(JudgeSection):
    """A judge model (any engine) that scores candidates: `point` (one score on a stated scale),
    `pair` (which of two responses is better, both orders), or `rubric` (named criteria scored
    separately; a prompt's own `rubric` replaces them)."""

    kind: Literal["llm"] = Field(description="`llm`.")
    name: str | None = Field(
        default=None,
        description="The `judge` column of its rows. Default: `llm-<mode>:<engine>` "
        "(e.g. `llm-point:transformers:smollm2`).",
    )
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    mode: Literal["point", "pair", "rubric"] = Field(default="point", description="What it is asked.")
    min_score: int = Field(default=1, description="Point / rubric: lowest score of the stated scale.")
    max_score: int = Field(
        default=10, description="Point / rubric: highest score; stored `score` is scaled to [0, 1]."
    )
    criteria: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CRITERIA),
        description="Rubric mode: criterion name -> what it means, each scored separately.",
    )
    swap: bool = Field(
        default=True, description="Pair mode: judge both orders (ab and ba) to expose position bias."
    )
    max_pairs_per_prompt: int | None = Field(
        default=None, ge=1, description="Pair mode: judge at most this many candidate pairs per prompt."
    )
    template: str | None = Field(
        default=None,
        description="Jinja template of the judge prompt replacing the built-in one (path, relative to "
        "the recipe); see src/prefmill/templates/judges/ for the variables.",
    )
    temperature: float = Field(default=0.0, ge=0, le=5, description="Judge sampling temperature (0: greedy).")
    max_new_tokens: int = Field(
        default=96,
        ge=1,
        le=32768,
        description="Longest verdict in tokens. The verdict's fields come first, then a one-sentence "
        "rationale: 96 holds both; a longer rationale is cut and the verdict kept.",
    )
    repair: bool = Field(
        default=True, description="Ask once more, with a repair prompt, when a verdict cannot be parsed."
    )
    structured_output: bool = Field(default=True, description=STRUCTURED_OUTPUT)
    seed: int = Field(default=0, description="Seed of the judge's sampling (with the judged ids).")

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("criteria must name at least one criterion")
        return v

    @property
    def judge_name(self) -> str:
        return self.name or f"llm-{self.mode}:{self.engine}"


def run(config: LLMJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.llm_judge import llm_judge

    return llm_judge(config, cands)


def fingerprint(config: LLMJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.llm_judge import template_fingerprint

    return template_fingerprint(config, {"template": config.mode})


KIND = JudgeKind(
    config=LLMJudge,
    traits=JudgeTraits(
        summary="a judge model: point, pair (both orders) or rubric mode",
        row_kind="llm",
        engine=True,
        calibrated=True,
        templates=("point", "pair", "rubric", "repair"),
        template_fields=("template",),
        order=80,
    ),
    run=run,
    fingerprint=fingerprint,
)
