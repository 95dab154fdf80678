"""The ``format`` verifier: JSON Schema validity, a regular expression, length limits.

Every candidate is checked (a reference is not needed). The checks configured in the recipe
(``recipe.FormatVerifier``) run in this order: ``json_schema``, ``regex``, characters, words. Score 1.0
when all pass, else 0.0; ``rationale`` lists every failed check (``"json: ...; words: 212 > 200"``) or
``"all N checks passed"``; ``raw`` holds each check's result as JSON.

JSON: the response's first fenced ```` ```json ```` block (or any fenced block) when there is one, else
the whole stripped response, must parse as JSON and validate against the schema with the
``jsonschema`` package (Draft 2020-12 unless the schema's ``$schema`` says otherwise). Words are
whitespace-separated tokens; characters are Unicode code points of the stripped response.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

import pyarrow as pa

from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.verifiers import point_judgments


class FormatVerifierSettings(Protocol):
    """What the checks read of a ``format`` judge's config (judges/format.py ``FormatVerifier``)."""

    name: str
    json_schema: Any
    regex: str | None
    fullmatch: bool
    min_chars: int | None
    max_chars: int | None
    min_words: int | None
    max_words: int | None


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def json_payload(response: str) -> str:
    """The text that should be JSON: a ```json block, else any fenced block, else the whole response."""
    blocks = _FENCE.findall(response)
    for tag, body in blocks:
        if tag.lower() == "json":
            return body.strip()
    return blocks[0][1].strip() if blocks else response.strip()


def _validator(schema: dict[str, Any]) -> Any:
    """A jsonschema validator for ``schema`` (checked when the recipe was loaded)."""
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def check_format(
    response: str | None, config: FormatVerifierSettings, validator: Any = None
) -> tuple[list[str], dict]:
    """(failed checks, per-check results) of one response."""
    text = (response or "").strip()
    failures: list[str] = []
    results: dict[str, Any] = {}
    if config.json_schema is not None:
        try:
            value = json.loads(json_payload(text))
        except ValueError as exc:
            failures.append(f"json: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
            results["json"] = False
        else:
            validator = validator or _validator(config.json_schema)
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
            if errors:
                first = errors[0]
                at = "/".join(map(str, first.path)) or "top level"
                failures.append(f"json: schema violation at {at}: {first.message[:120]}")
            results["json"] = not errors
    if config.regex is not None:
        pattern = re.compile(config.regex)
        ok = bool(pattern.fullmatch(text) if config.fullmatch else pattern.search(text))
        if not ok:
            failures.append(f"regex: no {'full ' if config.fullmatch else ''}match for {config.regex!r}")
        results["regex"] = ok
    n_chars, n_words = len(text), len(text.split())
    for label, n, low, high in (
        ("chars", n_chars, config.min_chars, config.max_chars),
        ("words", n_words, config.min_words, config.max_words),
    ):
        if low is None and high is None:
            continue
        if low is not None and n < low:
            failures.append(f"{label}: {n} < {low}")
        elif high is not None and n > high:
            failures.append(f"{label}: {n} > {high}")
        results[label] = n
    return failures, results


def format_verifier(config: FormatVerifierSettings, cands: pa.Table) -> pa.Table:
    """``format`` judgments for every row of ``cands`` (candidate_id, prompt_id, response)."""
    if cands.num_rows == 0:
        return empty_table("judgments")
    validator = _validator(config.json_schema) if config.json_schema is not None else None
    n_checks = sum(
        (
            config.json_schema is not None,
            config.regex is not None,
            config.min_chars is not None or config.max_chars is not None,
            config.min_words is not None or config.max_words is not None,
        )
    )
    scores, rationales, raws = [], [], []
    for response in cands.column("response").to_pylist():
        failures, results = check_format(response, config, validator)
        scores.append(0.0 if failures else 1.0)
        rationales.append("; ".join(failures) if failures else f"all {n_checks} checks passed")
        raws.append(json.dumps(results, sort_keys=True))
    return point_judgments(
        config.name,
        cands.column("candidate_id").to_pylist(),
        cands.column("prompt_id").to_pylist(),
        scores,
        rationales,
        raws,
        [None] * cands.num_rows,
    )
