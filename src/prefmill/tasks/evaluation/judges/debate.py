"""Judge kind `debate`: the judge model argues for each of two responses, then decides (scratch)."""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class DebateJudge(JudgeSection):
    """A judge model that argues for each of two responses to a prompt, then says which is better."""

    kind: Literal["debate"] = Field(description="`debate`.")
    name: str = Field(default="debate-judge", description="The `judge` column of its rows.")
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    template: str | None = Field(default=None, description="Jinja template replacing the built-in one.")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest verdict in tokens.")
    seed: int = Field(default=0, description="Seed of the judge's sampling.")

    @property
    def judge_name(self) -> str:
        return self.name


def run(config: DebateJudge, cands: pa.Table, engine: Any = None) -> pa.Table:
    from prefmill.ids import seed_for
    from prefmill.tasks.evaluation.llm_judge import (
        PAIR_FORMAT,
        Ask,
        _engine,
        _rows,
        ask_all,
        conversation_text,
        json_schema,
        judgments_table,
    )
    from prefmill.tasks.evaluation.parse import parse_pair
    from prefmill.tasks.evaluation.templates import load_template

    template = load_template("debate", config.template)
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(cands):
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    asks, units = [], []
    for group in by_prompt.values():
        for a, b in combinations(sorted(group, key=lambda r: r["candidate_id"]), 2):
            text = template.render(
                conversation=conversation_text(a.get("messages")),
                response_a=a["response"],
                response_b=b["response"],
            )
            seed = seed_for(config.seed, config.name, a["candidate_id"], b["candidate_id"], "ab")
            asks.append(Ask(text, seed, parse_pair, PAIR_FORMAT, json_schema("pair")))
            units.append((a, b))
    if not asks:
        return judgments_table([])
    answers = ask_all(
        _engine(config, engine), asks, temperature=0.0, max_new_tokens=config.max_new_tokens, repair=False
    )
    rows = []
    for (a, b), ans in zip(units, answers, strict=True):
        error = f"engine error: {ans.engine_error}" if ans.engine_error else ans.verdict.error
        rows.append(
            {
                "judge": config.name,
                "kind": "llm",
                "granularity": "outcome",
                "prompt_id": a["prompt_id"],
                "candidate_id": a["candidate_id"],
                "other_candidate_id": b["candidate_id"],
                "mode": "pair",
                "criterion": "overall",
                "order": "ab",
                "prefers_first": None if error else ans.verdict.prefers_a,
                "rationale": None if ans.verdict is None else ans.verdict.rationale,
                "raw": ans.raw,
                "parse_error": error,
            }
        )
    return judgments_table(rows)


def fingerprint(config: DebateJudge) -> dict[str, Any]:
    from prefmill.tasks.evaluation.llm_judge import template_fingerprint

    return template_fingerprint(config, {"template": "debate"})


KIND = JudgeKind(
    config=DebateJudge,
    traits=JudgeTraits(
        summary="a judge model argues for each of two responses, then decides",
        row_kind="llm",
        engine=True,
        templates=("debate",),
        template_fields=("template",),
    ),
    run=run,
    fingerprint=fingerprint,
)
