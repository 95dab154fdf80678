"""Judge kind `reward_model`: a transformers sequence-classification model scores (prompt, response)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class RewardModelJudge(JudgeSection):
    """A transformers sequence-classification model scores (prompt, response); kind `reward_model`.
    A one-label head gives its logit (or its sigmoid), a two-label head the probability of label 1.
    The model is loaded once per process."""

    kind: Literal["reward_model"] = Field(description="`reward_model`.")
    model: str = Field(description="Folder of a transformers sequence-classification model.")
    name: str | None = Field(default=None, description="Judge name (default `reward-model:<folder name>`).")
    batch_size: int = Field(default=16, ge=1, le=4096, description="Sequences per forward pass.")
    max_length: int = Field(default=1024, ge=8, le=131072, description="Longest input in tokens (truncated).")
    sigmoid: bool = Field(default=False, description="Map a one-label head's logit into [0, 1].")
    chat_template: bool = Field(
        default=True,
        description="Format (prompt, response) with the tokenizer's chat template when it has one.",
    )


def run(config: RewardModelJudge, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.reward_model import reward_model_judge  # loads torch lazily

    return reward_model_judge(config, cands)


KIND = JudgeKind(
    config=RewardModelJudge,
    traits=JudgeTraits(
        summary="a transformers sequence-classification model scores (prompt, response)",
        row_kind="reward_model",
        order=60,
    ),
    run=run,
)
