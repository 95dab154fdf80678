"""Rule-based verifiers: check a response against the prompt's reference answer.

``arithmetic_verifier`` extracts the final number of each response (``extract.extract_final_number``)
and compares it exactly with the reference (``numbers_equal``): score 1.0 when equal, 0.0 otherwise.
A response without a number is a wrong answer (score 0.0, ``raw`` null), not a parse error. The only
parse error is a reference that holds no number: such a row gets ``score`` null and ``parse_error`` set,
so it is excluded downstream instead of counted as wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.column_ids import content_ids, join, json_strings
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


def point_judgment_ids(judge: str, candidate_ids: Any, criterion: str = CRITERION) -> pa.Array:
    """``point_judgment_id`` of every candidate id (a list or an Arrow string array), column-wise."""
    cids = candidate_ids if isinstance(candidate_ids, pa.Array | pa.ChunkedArray) else pa.array(candidate_ids)
    head = "[" + canonical_json(judge) + ","
    tail = ",null," + canonical_json(criterion) + "," + canonical_json(GRANULARITY) + ",null,null]"
    return content_ids(join(head, json_strings(cids), tail))


def _column(values: Any, typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """``values`` (a list or an Arrow array) as an Arrow array of ``typ``."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values.cast(typ)
    return pa.array(values, typ)


def point_judgments(
    judge: str,
    candidate_ids: Sequence[str] | pa.Array,
    prompt_ids: Sequence[str] | pa.Array,
    scores: Sequence[float | None] | pa.Array,
    rationales: Sequence[str | None] | pa.Array,
    raws: Sequence[str | None] | pa.Array,
    parse_errors: Sequence[str | None] | pa.Array,
    *,
    kind: str = "verifier",
) -> pa.Table:
    """A conforming ``judgments`` table of point-wise, outcome-level, 'overall' judgments; each
    column a list or an Arrow array."""
    n = len(candidate_ids)
    nulls = pa.nulls(n, pa.string())

    def repeat(value: str) -> pa.Array:
        return pa.repeat(pa.scalar(value, pa.string()), n)

    table = pa.table(
        {
            "judgment_id": point_judgment_ids(judge, candidate_ids),
            "prompt_id": _column(prompt_ids, pa.string()),
            "candidate_id": _column(candidate_ids, pa.string()),
            "other_candidate_id": nulls,
            "judge": repeat(judge),
            "kind": repeat(kind),
            "mode": repeat("point"),
            "criterion": repeat(CRITERION),
            "granularity": repeat(GRANULARITY),
            "unit_index": pa.nulls(n, pa.int32()),
            "order": nulls,
            "score": _column(scores, pa.float64()),
            "prefers_first": pa.nulls(n, pa.float64()),
            "rationale": _column(rationales, pa.string()),
            "raw": _column(raws, pa.string()),
            "parse_error": _column(parse_errors, pa.string()),
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
