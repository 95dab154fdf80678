"""GRPO (TRL's GRPOTrainer): the policy samples completions of each prompt and is rewarded by
prefmill's arithmetic verifier against the prompt's ``reference``. Reads prompts, or any table with
``prompt_id`` joined to the prompts it was made from."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from prefmill.trainers.method import TrainMethod, TrainSection


class GRPOOptions(TrainSection):
    """The ``train:`` options only GRPO reads."""

    max_completion_length: int = Field(default=64, ge=1, description="grpo: longest sampled completion.")
    num_generations: int = Field(
        default=4, ge=2, description="grpo: completions per prompt (batch_size must be a multiple)."
    )


def trl_args(config: GRPOOptions) -> dict[str, Any]:
    return {
        "max_completion_length": config.max_completion_length,
        "num_generations": config.num_generations,
        "logging_steps": 1,
    }


def verifier_reward(
    prompts: list[Any], completions: list[Any], reference: list[str], **_: Any
) -> list[float]:
    """GRPO reward: prefmill's arithmetic verifier on each completion against the prompt's reference
    (1.0 for the exact final answer, else 0.0)."""
    import pyarrow as pa

    from prefmill.tasks.evaluation.verifiers import arithmetic_verifier
    from prefmill.trainers.data import completion_text

    n = len(completions)
    ids = [str(i) for i in range(n)]
    cands = pa.table(
        {
            "candidate_id": ids,
            "prompt_id": ids,
            "response": [completion_text(c) for c in completions],
            "reference": [str(r) for r in reference],
        }
    )
    judged = arithmetic_verifier(cands)
    scores = dict(
        zip(judged.column("candidate_id").to_pylist(), judged.column("score").to_pylist(), strict=True)
    )
    return [float(scores.get(i) or 0.0) for i in ids]


METHOD = TrainMethod(
    name="grpo",
    trl_modules=("trl",),
    trl_config="GRPOConfig",
    trl_trainer="GRPOTrainer",
    table="prompts",
    accepts=("prompts", "pairs", "points", "lists"),
    contract="prompt-only",
    doc="GRPOTrainer with prefmill's arithmetic verifier against `reference` as reward",
    trl_args=trl_args,
    rewards=(verifier_reward,),
    options=GRPOOptions,
)
