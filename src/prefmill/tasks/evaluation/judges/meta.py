"""Judge kind `meta`: a judge model resolves the candidates the other judges disagree on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits
from prefmill.tasks.evaluation.judges.llm import STRUCTURED_OUTPUT

if TYPE_CHECKING:
    import pyarrow as pa


class MetaJudge(JudgeSection):
    """A judge model asked to resolve only the candidates on which the other judges' scores (scaled
    to [0, 1]) spread by more than `threshold`; it runs after them, on the same shard."""

    kind: Literal["meta"] = Field(description="`meta`.")
    name: str = Field(default="meta-judge", description="The `judge` column of its rows.")
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Resolve a candidate when max - min of the scores exceeds this."
    )
    judges: list[str] = Field(
        default_factory=list, description="Judge names whose scores count (default: every point-wise judge)."
    )
    min_score: int = Field(default=1, description="Lowest score of the stated scale.")
    max_score: int = Field(default=10, description="Highest score; stored `score` is scaled to [0, 1].")
    template: str | None = Field(default=None, description="Jinja template replacing the built-in one.")
    temperature: float = Field(default=0.0, ge=0, le=5, description="Sampling temperature (0: greedy).")
    max_new_tokens: int = Field(
        default=96,
        ge=1,
        le=32768,
        description="Longest verdict in tokens. The verdict's fields come first, then a one-sentence "
        "rationale: 96 holds both; a longer rationale is cut and the verdict kept.",
    )
    repair: bool = Field(default=True, description="Ask once more when a verdict cannot be parsed.")
    structured_output: bool = Field(default=True, description=STRUCTURED_OUTPUT)
    seed: int = Field(default=0, description="Seed of the judge's sampling.")

    @property
    def judge_name(self) -> str:
        return self.name


def run(config: MetaJudge, cands: pa.Table, prior: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.meta import meta_judge

    return meta_judge(config, cands, prior)


def fingerprint(config: MetaJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.llm_judge import template_fingerprint

    return template_fingerprint(config, {"template": "meta"})


KIND = JudgeKind(
    config=MetaJudge,
    traits=JudgeTraits(
        summary="a judge model that re-scores only the candidates the other judges disagree on",
        row_kind="llm",
        engine=True,
        ensemble=True,
        templates=("meta",),
        template_fields=("template",),
        order=90,
    ),
    run=run,
    fingerprint=fingerprint,
)
