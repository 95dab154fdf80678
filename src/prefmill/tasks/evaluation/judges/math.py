"""Judge kind `math`: the final answer of a response against the prompt's reference, as rationals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, with_reference

if TYPE_CHECKING:
    import pyarrow as pa


class MathVerifier(JudgeSection):
    """Final-answer verifier for math prompts: extracts the final answer of a response (`\\boxed{}`,
    `#### n`, "the answer is n", the last `= n`, else the last number; integers, decimals, fractions,
    thousands commas, units and `%` are understood) and compares it with the prompt's `reference` as exact
    rationals, or within the tolerances below. Score 1 or 0; prompts without a reference and prompts
    whose reference is a code test spec are skipped."""

    kind: Literal["math"] = Field(description="`math`.")
    name: str = Field(default="math-verifier", min_length=1, description="Judge name in `judgments`.")
    rel_tol: float = Field(
        default=0.0, ge=0, le=1, description="Relative tolerance (`1e-6` accepts 3.1415927 for 3.14159265)."
    )
    abs_tol: float = Field(default=0.0, ge=0, description="Absolute tolerance.")
    percent_as_fraction: bool = Field(
        default=False, description="Also accept `50%` for a reference of 0.5 (and 0.5 for `50%`)."
    )


def run(config: MathVerifier, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.math_answer import math_verifier

    return math_verifier(config, with_reference(cands))


KIND = JudgeKind(
    config=MathVerifier,
    traits=JudgeTraits(
        summary="math final-answer verifier (numbers, fractions, \\boxed{}, #### n) against the reference",
        row_kind="verifier",
        gold=True,
        order=30,
    ),
    run=run,
)
