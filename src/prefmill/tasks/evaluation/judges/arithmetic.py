"""Judge kind `arithmetic`: the final number of a response against the prompt's numeric reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, with_reference

if TYPE_CHECKING:
    import pyarrow as pa


class ArithmeticJudge(JudgeSection):
    """Final-answer verifier for prompts with a numeric `reference` (score 1 or 0)."""

    kind: Literal["arithmetic"] = Field(description="`arithmetic`.")


def run(_config: ArithmeticJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.verifiers import arithmetic_verifier

    return arithmetic_verifier(with_reference(cands))


KIND = JudgeKind(
    config=ArithmeticJudge,
    traits=JudgeTraits(
        summary="checks the final number against the reference",
        row_kind="verifier",
        gold=True,
        judge_name="arithmetic-verifier",
        order=10,
    ),
    run=run,
)
