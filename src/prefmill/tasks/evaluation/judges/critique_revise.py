"""Judge kind `critique_revise`: constitutional critique-revise, whose revisions become candidates."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, no_rows

DEFAULT_PRINCIPLES: tuple[str, ...] = (
    "The response answers the user's actual request correctly and completely.",
    "The response contains no harmful, unethical, dangerous or illegal content.",
    "The response states no made-up facts and admits uncertainty.",
    "The response is clear and no longer than needed.",
)


class CritiqueReviseJudge(JudgeSection):
    """Constitutional critique-revise: a model critiques each candidate against written principles
    and rewrites it; each revision becomes a new candidate (`origin: revision`, `parent_id` = the
    original) that the other judges then judge with the originals."""

    kind: Literal["critique_revise"] = Field(description="`critique_revise`.")
    name: str = Field(default="critique-revise", description="Name recorded in the revisions' sampling.")
    engine: str = Field(default="transformers:smollm2", description="Engine as `kind:model`.")
    principles: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRINCIPLES),
        min_length=1,
        description="The written principles the critique checks the response against.",
    )
    critique_template: str | None = Field(default=None, description="Jinja template of the critique prompt.")
    revise_template: str | None = Field(default=None, description="Jinja template of the revision prompt.")
    temperature: float = Field(default=0.0, ge=0, le=5, description="Sampling temperature (0: greedy).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest critique / revision.")
    seed: int = Field(default=0, description="Seed of the sampling.")

    @property
    def judge_name(self) -> str:
        return self.name


def fingerprint(config: CritiqueReviseJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.llm_judge import template_fingerprint

    return template_fingerprint(config, {"critique_template": "critique", "revise_template": "revise"})


KIND = JudgeKind(
    config=CritiqueReviseJudge,
    traits=JudgeTraits(
        summary="critiques and revises candidates; the revisions are judged as new candidates",
        row_kind=None,
        engine=True,
        output="candidates",  # the revision flow adds them (revise.critique_revise) before judging
        templates=("critique", "revise"),
        template_fields=("critique_template", "revise_template"),
        order=100,
    ),
    run=no_rows,
    fingerprint=fingerprint,
)
