"""Rule-based verifiers: check a response against the prompt's reference answer.

``arithmetic_verifier`` extracts the final number of each response (``extract.extract_final_number``)
and compares it exactly with the reference (``numbers_equal``): score 1.0 when equal, 0.0 otherwise.
A response without a number is a wrong answer (score 0.0, ``raw`` null), not a parse error. The only
parse error is a reference that holds no number: such a row gets ``score`` null and ``parse_error`` set,
so it is excluded downstream instead of counted as wrong.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.ids import ID_LENGTH, canonical_json
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.extract import extract_final_number, normalize_number, to_fraction

ARITHMETIC_JUDGE = "arithmetic-verifier"
CRITERION = "overall"
GRANULARITY = "outcome"


def point_judgment_id(judge: str, candidate_id: str, criterion: str = CRITERION) -> str:
    """Id of a point-wise outcome judgment.

    ``content_id([judge, candidate_id, None, criterion, "outcome", None, None])``: the ``None`` are
    other_candidate_id, unit_index and order. Computed with a reused encoder (same text as
    ``canonical_json``), as it runs once per candidate.
    """
    body = canonical_json([judge, candidate_id, None, criterion, GRANULARITY, None, None])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:ID_LENGTH]


def point_judgments(
    judge: str,
    candidate_ids: list[str],
    prompt_ids: list[str],
    scores: list[float | None],
    rationales: list[str | None],
    raws: list[str | None],
    parse_errors: list[str | None],
    *,
    kind: str = "verifier",
) -> pa.Table:
    """A conforming ``judgments`` table of point-wise, outcome-level, 'overall' judgments."""
    n = len(candidate_ids)
    nulls = pa.nulls(n, pa.string())
    table = pa.table(
        {
            "judgment_id": pa.array([point_judgment_id(judge, c) for c in candidate_ids], pa.string()),
            "prompt_id": pa.array(prompt_ids, pa.string()),
            "candidate_id": pa.array(candidate_ids, pa.string()),
            "other_candidate_id": nulls,
            "judge": pa.array([judge] * n, pa.string()),
            "kind": pa.array([kind] * n, pa.string()),
            "mode": pa.array(["point"] * n, pa.string()),
            "criterion": pa.array([CRITERION] * n, pa.string()),
            "granularity": pa.array([GRANULARITY] * n, pa.string()),
            "unit_index": pa.nulls(n, pa.int32()),
            "order": nulls,
            "score": pa.array(scores, pa.float64()),
            "prefers_first": pa.nulls(n, pa.float64()),
            "rationale": pa.array(rationales, pa.string()),
            "raw": pa.array(raws, pa.string()),
            "parse_error": pa.array(parse_errors, pa.string()),
        }
    )
    return conform("judgments", table)


def _usable(cands: pa.Table) -> pa.Table:
    """Rows to judge: non-null reference, and no generation error when the column is there."""
    mask = pc.is_valid(cands.column("reference"))
    if "error" in cands.column_names:
        mask = pc.and_(mask, pc.is_null(cands.column("error")))
    return cands.filter(mask)


def arithmetic_verifier(cands: pa.Table) -> pa.Table:
    """Judge each candidate with a reference: does its final number equal the reference's?

    ``cands`` needs ``candidate_id``, ``prompt_id``, ``response`` and ``reference``. Rows with a null
    reference (and rows whose ``error`` is set, when that column is present) are not judged. A reference
    that is not a plain number (for example a GSM8K solution ending in ``#### 72``) is reduced to its
    final number first.
    """
    rows = _usable(cands)
    if rows.num_rows == 0:
        return empty_table("judgments")
    scores: list[float | None] = []
    rationales: list[str | None] = []
    raws: list[str | None] = []
    errors: list[str | None] = []
    expected_cache: dict[str, str | None] = {}
    for response, reference in zip(
        rows.column("response").to_pylist(), rows.column("reference").to_pylist(), strict=True
    ):
        if reference not in expected_cache:
            expected_cache[reference] = normalize_number(reference) or extract_final_number(reference)
        expected = expected_cache[reference]
        got = extract_final_number(response)
        raws.append(got)
        if expected is None:
            scores.append(None)
            rationales.append(None)
            errors.append(f"reference {reference[:60]!r} holds no number; the arithmetic verifier needs one")
        elif got is None:
            scores.append(0.0)
            rationales.append("no number found in the response")
            errors.append(None)
        else:
            ok = got == expected or to_fraction(got) == to_fraction(expected)
            scores.append(1.0 if ok else 0.0)
            rationales.append(f"extracted {got}, expected {expected}: {'correct' if ok else 'wrong'}")
            errors.append(None)
    return point_judgments(
        ARITHMETIC_JUDGE,
        rows.column("candidate_id").to_pylist(),
        rows.column("prompt_id").to_pylist(),
        scores,
        rationales,
        raws,
        errors,
    )
