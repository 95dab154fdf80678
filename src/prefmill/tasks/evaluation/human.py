"""The ``human`` judge: verdicts imported from a CSV or JSONL file as kind 'human' rows of `judgments`.

One row (a JSON object per line, or a CSV row with a header) is one verdict:

=====================  ==========================================================================
``annotator``          required; the row's judge is ``human:<annotator>``
``candidate_id``       required; a candidate of this build
``score``              a point verdict: a number (any scale; the SQL aggregates it like other scores)
``other_candidate_id`` with ``prefers_first``: a pair verdict on (candidate_id, other_candidate_id)
``prefers_first``      in [0, 1]: 1 = candidate_id is better, 0 = the other is, 0.5 = a tie
                       (``true``/``false`` are 1/0)
``criterion``          optional, default ``overall``
``rationale``          optional free text
``order``              optional, pair verdicts: 'ab' (candidate_id was shown first) or 'ba'
``seconds``            optional: the time the annotator spent (kept in ``raw``)
=====================  ==========================================================================

A row has either ``score`` or ``other_candidate_id`` + ``prefers_first``. Rows are ``mode`` 'point' or
'pair', ``granularity`` 'outcome', ``order`` the row's ``order`` (null when not given). Anything
wrong -- an unknown candidate, a pair across two prompts, a missing or non-numeric field, the same
verdict twice -- is an ``InputError`` naming the file, the line and the fix; nothing is imported
from a file with an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefmill.errors import InputError
from prefmill.ids import content_id
from prefmill.records import read_csv, read_jsonl
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.verifiers import point_judgment_id

FIELDS = (
    "annotator",
    "candidate_id",
    "score",
    "other_candidate_id",
    "prefers_first",
    "criterion",
    "rationale",
    "order",
    "seconds",
)


def _rows(path: Path, fmt: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a verdicts file."""
    kind = fmt or path.suffix.lower().lstrip(".")
    if kind not in ("jsonl", "csv"):
        raise InputError(
            f"{path}: unknown verdicts format '{kind}'; use a .jsonl or .csv file, or set `format`"
        )
    try:
        path.open("rb").close()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the human verdicts file ({exc.strerror}); fix the path"
        ) from None
    if kind == "csv":
        rows = read_csv(path, required=FIELDS[:2], columns_hint=", ".join(FIELDS))
        for line, row in rows:
            yield line, {k: (v if v != "" else None) for k, v in row.items() if k}
    else:
        yield from read_jsonl(path, example="{" + ", ".join(f'"{f}": ...' for f in FIELDS[:2]) + "}")


def _number(value: Any, field: str, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool):
        number = 1.0 if value else 0.0
    elif isinstance(value, str) and value.strip().lower() in ("true", "false"):
        number = 1.0 if value.strip().lower() == "true" else 0.0
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: {field} {value!r} is not a number") from None
    if (
        not math.isfinite(number)
        or (low is not None and number < low)
        or (high is not None and number > high)
    ):
        bounds = f" in [{low:g}, {high:g}]" if low is not None and high is not None else ""
        raise InputError(f"{where}: {field} {value!r} must be a finite number{bounds}")
    return number


def human_judgments(path: Path, fmt: str | None, candidates: pa.Table) -> pa.Table:
    """The ``judgments`` rows of a verdicts file; ``candidates`` (candidate_id, prompt_id) of this build."""
    prompt_of = dict(
        zip(
            candidates.column("candidate_id").to_pylist(),
            candidates.column("prompt_id").to_pylist(),
            strict=True,
        )
    )
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in _rows(path, fmt):
        where = f"{path} line {line}"
        unknown = sorted(k for k in row if k not in FIELDS)
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
        annotator = str(row.get("annotator") or "").strip()
        cid = row.get("candidate_id")
        if not annotator:
            raise InputError(f"{where}: annotator is missing; every verdict names its annotator")
        if not cid:
            raise InputError(f"{where}: candidate_id is missing")
        cid = str(cid)
        if cid not in prompt_of:
            raise InputError(
                f"{where}: candidate_id '{cid}' is not a candidate of this build; fix the id "
                "(`prefmill show candidates --dataset DATASET --root ROOT` lists them) or remove the row"
            )
        other, score, prefers = row.get("other_candidate_id"), row.get("score"), row.get("prefers_first")
        criterion = str(row.get("criterion") or "overall")
        judge = f"human:{annotator}"
        if other is not None:
            other = str(other)
            if score is not None or prefers is None:
                raise InputError(
                    f"{where}: a pair verdict has other_candidate_id and prefers_first, and no score"
                )
            if other not in prompt_of:
                raise InputError(
                    f"{where}: other_candidate_id '{other}' is not a candidate of this build; fix the id "
                    "or remove the row"
                )
            if prompt_of[other] != prompt_of[cid] or other == cid:
                raise InputError(
                    f"{where}: candidates '{cid}' and '{other}' must be two different responses to the "
                    "same prompt"
                )
            mode, value, pref = "pair", None, _number(prefers, "prefers_first", where, 0.0, 1.0)
            jid = content_id([judge, cid, other, criterion, "outcome", None, None])
        else:
            if score is None or prefers is not None:
                raise InputError(
                    f"{where}: give a score (point verdict) or other_candidate_id + prefers_first "
                    "(pair verdict)"
                )
            mode, value, pref = "point", _number(score, "score", where), None
            jid = point_judgment_id(judge, cid, criterion)
        if jid in seen:
            raise InputError(
                f"{where}: repeats the verdict of line {seen[jid]} (same annotator, candidates and criterion)"
            )
        seen[jid] = line
        rationale = row.get("rationale")
        order = row.get("order")
        if order is not None and (mode != "pair" or order not in ("ab", "ba")):
            raise InputError(f"{where}: order {order!r} must be 'ab' or 'ba', and only on a pair verdict")
        if row.get("seconds") is not None:
            _number(row["seconds"], "seconds", where, 0.0, 1e9)
        out.append(
            {
                "judgment_id": jid,
                "prompt_id": prompt_of[cid],
                "candidate_id": cid,
                "other_candidate_id": other,
                "judge": judge,
                "kind": "human",
                "mode": mode,
                "criterion": criterion,
                "granularity": "outcome",
                "unit_index": None,
                "order": order,
                "score": value,
                "prefers_first": pref,
                "rationale": None if rationale is None else str(rationale),
                "raw": json.dumps(row, sort_keys=True, ensure_ascii=False),
                "parse_error": None,
            }
        )
    if not out:
        return empty_table("judgments")
    return conform("judgments", pa.Table.from_pylist(out, schema=empty_table("judgments").schema))
