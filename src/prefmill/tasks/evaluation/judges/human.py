"""Judge kind `human`: verdicts imported from a CSV or JSONL file, as one extra judgments shard."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, no_rows


class HumanJudge(JudgeSection):
    """Human verdicts imported from a CSV or JSONL file as kind `human` rows (judge `human:<annotator>`).
    A row holds `annotator` and either `candidate_id` + `score` (point) or `candidate_id` +
    `other_candidate_id` + `prefers_first` (pair); optional `criterion`, `rationale`."""

    kind: Literal["human"] = Field(description="`human`.")
    path: str = Field(description="The verdicts file; relative paths are relative to the recipe's folder.")
    format: Literal["jsonl", "csv"] | None = Field(
        default=None, description="File format; by default taken from the suffix."
    )


KIND = JudgeKind(
    config=HumanJudge,
    traits=JudgeTraits(
        summary="verdicts imported from a CSV/JSONL file (one extra shard, written by the evaluation flow)",
        row_kind="human",
        output="extra_shard",
        gold=True,
        order=70,
    ),
    run=no_rows,  # nothing per candidates shard: the flow imports the file (human.human_judgments)
)
