"""The ``math`` verifier: final-answer extraction and comparison with the prompt's reference.

On top of ``extract.extract_final_number`` (``\\boxed{}``, ``#### n``, answer phrases, ``= n``, the last
number; signs, ``$``, thousands commas, decimals, fractions, ``\\frac``), the text is first normalised:

* LaTeX thousands and thin spaces between digits: ``2{,}500``, ``1\\,000``, ``1 000`` (U+2009/U+202F);
* scientific notation: ``1.5e3``, ``1.5E-3``, ``3.5 \\times 10^{2}``, ``3.5×10^2`` become plain decimals;
* ``\\dfrac`` / ``\\tfrac`` are ``\\frac``; ``\\%`` is ``%``; ``\\$`` is ``$``.

The expected answer comes from the reference: a bare number (``42``, ``3/4``, ``\\frac{3}{4}``,
``$1,250``, ``0.5``), or a worked solution (its final number, e.g. GSM8K ``#### 72``), or -- when the
reference is a short non-numeric expression such as ``\\sqrt{2}`` or ``2\\pi`` -- that expression, then
compared as normalised text with the response's last ``\\boxed{}`` (or "the answer is ...").

Numbers are equal as exact rationals, or within ``max(rel_tol * |expected|, abs_tol)``; with
``percent_as_fraction`` an answer off by a factor of exactly 100 also counts (``50%`` for ``0.5``).
Score 1.0 or 0.0, with the reason in ``rationale`` and the extracted answer in ``raw``. A reference that
yields no answer is a ``parse_error`` row (score null), so it is excluded downstream, not counted wrong.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Protocol

import pyarrow as pa

from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.extract import (
    _BOXED_RE,
    _NUM,
    boxed_contents,
    extract_final_number,
    normalize_number,
    to_fraction,
)
from prefmill.tasks.evaluation.verifiers import point_judgments


class MathVerifierSettings(Protocol):
    """What the answer check reads of a ``math`` judge's config (judges/math.py ``MathVerifier``)."""

    name: str
    abs_tol: float
    rel_tol: float
    percent_as_fraction: bool


_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\[,!; ]|[\u2009\u202f]|\s(?=\d{3}(?!\d)))(?=\d{3}(?!\d))")
_SCI_TIMES = re.compile(
    r"(?<![\w.])(-?\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|×|\*)\s*10\s*\^\s*\{?\s*([-−+]?\d+)\s*\}?"
)
_SCI_E = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)[eE]([-+]?\d+)(?![\w.])")
_ANSWER_TEXT = re.compile(r"\banswer\b(?:\s+is)?[\s:*]*\$?([^\n$]+?)\$?\s*(?:\.\s|\.$|$|\n)", re.IGNORECASE)
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}")
_SYMBOLIC = re.compile(r"[\\^a-zA-Zπ√]")
#: A number followed by unit words only: ``12 hours``, ``3.5 km/h``, ``45°``, ``$20 each``.
_WITH_UNITS = re.compile(r"\s*(" + _NUM + r")\s*(?:[A-Za-z°%]+\.?(?:\s*/\s*[A-Za-z]+)?\s*)+")


def _sci(mantissa: str, exponent: str) -> str:
    try:
        value = Decimal(mantissa) * (Decimal(10) ** int(exponent.replace("−", "-")))
    except (InvalidOperation, ValueError):
        return f"{mantissa}e{exponent}"
    return format(value.normalize(), "f")


def normalize_math(text: str) -> str:
    """LaTeX spacing, thousands groups and scientific notation rewritten so the extractor reads them."""
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\%", "%").replace("\\$", "$").replace("−", "-")
    text = _THOUSANDS.sub("", text)
    text = _SCI_TIMES.sub(lambda m: _sci(m.group(1), m.group(2)), text)
    return _SCI_E.sub(lambda m: _sci(m.group(1), m.group(2)), text)


def canonical_expression(text: str) -> str:
    """A non-numeric answer as comparable text: no spaces, ``$``, ``\\left``/``\\right``, trailing dot."""
    text = normalize_math(text)
    text = _TEXT_CMD.sub(r"\1", text)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\ ", "$", " "):
        text = text.replace(token, "")
    return text.strip().rstrip(".").replace("{", "").replace("}", "")


def expected_answer(reference: str) -> tuple[str, str] | None:
    """``("number", n)`` or ``("expression", e)`` from a reference; None when it holds no answer."""
    core = reference.strip()
    boxes = boxed_contents(core)
    if boxes and _BOXED_RE.match(core) and core.endswith("}"):
        core = boxes[0]
    core = normalize_math(core.strip().strip("$").strip())
    core = re.sub(r"^[A-Za-z]\w*\s*=\s*(?=\S)", "", core)  # "x = 5" -> "5"
    if "####" not in core:
        plain = normalize_number(core) or normalize_number(core.rstrip("%"))
        if plain is None and re.fullmatch(r"\s*-?\s*\\frac\s*\{[^{}]+\}\s*\{[^{}]+\}\s*", core):
            plain = extract_final_number(core)
        if plain is None and (unit := _WITH_UNITS.fullmatch(core)):
            plain = normalize_number(unit.group(1))
        if plain is not None:
            return ("number", plain)
        tuple_like = re.fullmatch(r"[(\[].*,.*[)\]]", core) is not None  # (1, 2), [0, 1)
        if (_SYMBOLIC.search(core) or tuple_like) and len(core.split()) <= 3:
            return ("expression", canonical_expression(core))
    found = extract_final_number(core)
    return ("number", found) if found is not None else None


def response_expression(response: str) -> str | None:
    """The response's final non-numeric answer: its last ``\\boxed{}``, else an "answer is ..." phrase."""
    boxes = boxed_contents(response)
    if boxes:
        return canonical_expression(boxes[-1])
    phrases = _ANSWER_TEXT.findall(response)
    return canonical_expression(phrases[-1]) if phrases else None


def close_enough(got: Fraction, expected: Fraction, config: MathVerifierSettings) -> bool:
    if got == expected:
        return True
    bound = max(config.rel_tol * abs(float(expected)), config.abs_tol)
    return bound > 0 and abs(float(got) - float(expected)) <= bound


def verify_math(
    response: str | None, reference: str, config: MathVerifierSettings
) -> tuple[float | None, str, str | None]:
    """(score, rationale or parse error, extracted answer) of one response; score None = parse error."""
    expected = expected_answer(reference)
    if expected is None:
        return None, f"reference {reference[:60]!r} holds no answer; the math verifier needs one", None
    kind, want = expected
    text = normalize_math(response or "")
    if kind == "expression":
        got = response_expression(text)
        if got is None:
            return 0.0, "no \\boxed{} or 'the answer is' answer found in the response", None
        ok = got == want
        return (1.0 if ok else 0.0), f"answer {got}, expected {want}: {'correct' if ok else 'wrong'}", got
    got = extract_final_number(text)
    if got is None:
        return 0.0, "no number found in the response", None
    fg, fw = to_fraction(got), to_fraction(want)
    if fg is None or fw is None:
        return 0.0, f"extracted {got}, expected {want}: not comparable", got
    ok = close_enough(fg, fw, config)
    how = "" if fg == fw or not ok else " (within tolerance)"
    if not ok and config.percent_as_fraction and (fg == fw * 100 or fg * 100 == fw):
        ok, how = True, " (as a percentage)"
    return (1.0 if ok else 0.0), f"extracted {got}, expected {want}: {'correct' if ok else 'wrong'}{how}", got


def math_verifier(config: MathVerifierSettings, cands: pa.Table) -> pa.Table:
    """``math`` judgments for the rows of ``cands`` with a reference that is not a code test spec.

    ``cands`` needs candidate_id, prompt_id, response and reference (error rows already dropped).
    """
    from prefmill.tasks.evaluation.code import parse_code_reference

    ids, pids, scores, rationales, raws, errors = [], [], [], [], [], []
    for cid, pid, response, reference in zip(
        cands.column("candidate_id").to_pylist(),
        cands.column("prompt_id").to_pylist(),
        cands.column("response").to_pylist(),
        cands.column("reference").to_pylist(),
        strict=True,
    ):
        if reference is None or parse_code_reference(reference) is not None:
            continue
        score, reason, raw = verify_math(response, reference, config)
        ids.append(cid)
        pids.append(pid)
        scores.append(score)
        rationales.append(reason if score is not None else None)
        errors.append(reason if score is None else None)
        raws.append(raw)
    if not ids:
        return empty_table("judgments")
    return point_judgments(config.name, ids, pids, scores, rationales, raws, errors)
