"""What the LLM judges' work reads of their configs, as Protocols: the work modules (llm_judge.py,
meta.py) depend on these, not on the kind modules under judges/ that declare the configs and call
the work (so the two never import each other)."""

from __future__ import annotations

from typing import Protocol


class EngineSettings(Protocol):
    """A judge config naming its engine (``kind:model``): llm, meta, critique_revise."""

    engine: str


class AskSettings(EngineSettings, Protocol):
    """What every judge that asks its engine for a scored verdict reads (llm, meta)."""

    min_score: int
    max_score: int
    template: str | None
    temperature: float
    max_new_tokens: int
    repair: bool
    structured_output: bool
    seed: int


class LLMJudgeSettings(AskSettings, Protocol):
    """What LLM judging reads of an ``llm`` judge's config (judges/llm.py ``LLMJudge``)."""

    mode: str
    criteria: dict[str, str]
    swap: bool
    max_pairs_per_prompt: int | None

    @property
    def judge_name(self) -> str: ...


class MetaSettings(AskSettings, Protocol):
    """What the meta-judge reads of a ``meta`` config (judges/meta.py ``MetaJudge``)."""

    name: str
    threshold: float
    judges: list[str]
