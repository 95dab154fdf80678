"""Judge kind `atomic`: split each response into atoms (sentences or lines), judge every atom with a
point judge, and aggregate the atoms' scores into the outcome score by a stated rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa

#: Bump when the same atom verdicts give other rows (the split, the aggregation).
ATOMIC_PARSER_VERSION = "1"


class AtomicJudge(JudgeSection):
    """Atomic-level judging: each response is split into atoms (`sentences` or `lines`); the point
    judge in `judge` (any kind that scores candidates one by one: `math`, `format`, `llm` in point
    mode, `reward_model`...) judges every atom as if it were the response (same prompt and
    reference). One row per atom (`granularity` `atomic`, `unit_index` the atom) with the inner
    judge's score, and one outcome row whose score aggregates them: `min` (every atom must hold),
    `mean`, or `share` (the share of atoms scoring at least `threshold`: "share supported")."""

    kind: Literal["atomic"] = Field(description="`atomic`.")
    name: str = Field(default="atomic", min_length=1, description="The `judge` column of its rows.")
    judge: dict[str, Any] = Field(
        description="The point judge that judges each atom: a judge config (`kind: ...`)."
    )
    split: Literal["sentences", "lines"] = Field(
        default="sentences", description="How a response is cut into atoms."
    )
    aggregate: Literal["min", "mean", "share"] = Field(
        default="min", description="Outcome score from the atoms' scores."
    )
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="`share`: an atom is supported at this score or above."
    )
    max_atoms: int = Field(
        default=64, ge=1, le=10_000, description="Atoms judged per response (the first ones)."
    )

    @field_validator("judge")
    @classmethod
    def _inner(cls, v: dict[str, Any]) -> dict[str, Any]:
        inner_config(v)
        return v


def inner_config(spec: dict[str, Any]) -> Any:
    """The validated inner point judge (a ``ValueError`` naming what is wrong)."""
    from prefmill.tasks.evaluation.judges.registry import KINDS

    kind = KINDS.get(str(spec.get("kind")))
    if kind is None:
        raise ValueError(
            f"judge.kind {spec.get('kind')!r} is not a judge kind; use one of {', '.join(KINDS)}"
        )
    traits = kind.traits
    if (
        traits.ensemble
        or traits.output != "shard"
        or traits.granularity != "outcome"
        or kind.name == "atomic"
    ):
        raise ValueError(f"judge.kind {kind.name!r} does not judge candidates one by one; use a point judge")
    if (
        getattr(kind.config.model_fields.get("mode"), "default", None) is not None
        and spec.get("mode", "point") != "point"
    ):
        raise ValueError("judge.mode must be `point`: each atom gets one score")
    return kind.config.model_validate(spec)


def run(config: AtomicJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.atomic import atomic_judge
    from prefmill.tasks.evaluation.judges.registry import judge_kind

    inner = inner_config(config.judge)
    return atomic_judge(config, lambda atoms: judge_kind(inner).run(inner, atoms), cands)


def fingerprint(config: AtomicJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.judges.registry import fingerprint as inner_fingerprint

    return {"parser": ATOMIC_PARSER_VERSION, "judge": inner_fingerprint(inner_config(config.judge))}


KIND = JudgeKind(
    config=AtomicJudge,
    traits=JudgeTraits(
        summary="judges each sentence with a point judge, aggregates (min, mean, share)",
        row_kind="verifier",
        granularity="atomic",
        order=114,
    ),
    run=run,
    fingerprint=fingerprint,
)
