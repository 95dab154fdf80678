"""Judge kind `format`: JSON schema, regular expression and length checks on every response."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits

if TYPE_CHECKING:
    import pyarrow as pa


class FormatVerifier(JudgeSection):
    """Checks the form of every response (with or without a reference): a JSON schema, a regular
    expression, length limits. Score 1 when every configured check passes, else 0, with the failed
    checks in `rationale`."""

    kind: Literal["format"] = Field(description="`format`.")
    name: str = Field(
        default="format-verifier",
        min_length=1,
        description="Judge name in `judgments`; give each format verifier its own name.",
    )
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="The response (or its first ```json block) must be JSON valid against this JSON "
        "Schema (a mapping; `{}` only asks for valid JSON).",
    )
    regex: str | None = Field(default=None, description="The response must match (Python `re.search`).")
    fullmatch: bool = Field(default=False, description="`regex` must match the whole (stripped) response.")
    min_chars: int | None = Field(default=None, ge=0, description="Fewest characters.")
    max_chars: int | None = Field(default=None, ge=0, description="Most characters.")
    min_words: int | None = Field(default=None, ge=0, description="Fewest words (whitespace-separated).")
    max_words: int | None = Field(default=None, ge=0, description="Most words.")

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _some_check(self) -> FormatVerifier:
        limits = (self.min_chars, self.max_chars, self.min_words, self.max_words)
        if self.json_schema is None and self.regex is None and all(v is None for v in limits):
            raise ValueError("a format verifier needs a check: json_schema, regex, or min/max_chars/words")
        if self.json_schema is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
        return self

    def __hash__(self) -> int:  # json_schema is a dict: hash the canonical JSON of the whole config
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))


def run(config: FormatVerifier, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.format_check import format_verifier

    return format_verifier(config, cands)


KIND = JudgeKind(
    config=FormatVerifier,
    traits=JudgeTraits(
        summary="JSON schema, regex and length checks on every response",
        row_kind="verifier",
        gold=True,
        order=50,
    ),
    run=run,
)
