"""Find the final numeric answer in a model response, and compare numbers exactly.

``extract_final_number`` looks for, in this order of preference (the last occurrence wins within
each rule):

1. ``\\boxed{...}`` -- the first number inside (after the last ``=``, if any); ``\\frac{a}{b}`` counts
   as ``a/b``;
2. ``#### n`` (GSM8K style);
3. an answer phrase: ``the answer is n``, ``final answer: n``, ``**Answer:** n``, ``answer = n``;
4. ``= n`` on the last non-empty line (``6 * 7 = 42 apples.``);
5. the last number anywhere in the text.

A number may carry a sign (``-3``, ``−3``), a currency sign (``$1,250``), thousands separators
(``1,234,567``), decimals (``0.75``, ``.5``) or be a simple fraction (``3/4``). The result is
normalised: no ``$`` or commas, integers without a decimal part (``42.0`` -> ``"42"``), decimals
without trailing zeros (``2.50`` -> ``"2.5"``), fractions reduced (``6/8`` -> ``"3/4"``, ``8/4`` ->
``"2"``). ``numbers_equal`` compares two such strings as exact rationals (``"0.75" == "3/4"``).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# One number: optional sign, optional $, digits with thousands commas or plain digits, optional
# decimals, optional "/denominator"; or a bare ".5". Not preceded by a word character, "." or "/" so
# that "5-3" gives 5 and 3, and "x2" or "1.5" do not give a number mid-token.
_NUM = (
    r"(?<![\w./])"
    r"(?:[-−]\s?)?\$?"
    r"(?:(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:/\d+(?:\.\d+)?(?![\d/]))?"
)
_NUM_RE = re.compile(_NUM)
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*([-−]?\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}")
_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES_RE = re.compile(r"####\s*\$?\s*(" + _NUM + ")")
_PHRASE_RE = re.compile(
    r"\banswer\b(?:\s+(?:is|was|would\s+be|should\s+be|will\s+be|of))?"
    r"[\s*_:=$\\(\[{]*(?:(?:approximately|about|exactly|roughly)\s+)?"
    r"(" + _NUM + ")",
    re.IGNORECASE,
)
_EQUALS_RE = re.compile(r"=\s*\**\s*(" + _NUM + ")")


def boxed_contents(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}``, with nested braces balanced."""
    out: list[str] = []
    for m in _BOXED_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1])
    return out


def _parse(token: str) -> Fraction | None:
    """A number token (as matched by ``_NUM``, or a plain numeric string) as an exact rational."""
    s = token.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "").rstrip("%")
    if not s:
        return None
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            d = Fraction(Decimal(den))
            return None if d == 0 else Fraction(Decimal(num)) / d
        return Fraction(Decimal(s))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _format(value: Fraction, decimal_like: bool) -> str:
    """Integers as ``"42"``, decimals from decimal input as ``"2.5"``, other rationals as ``"3/4"``."""
    if value.denominator == 1:
        return str(value.numerator)
    if decimal_like:
        d = (Decimal(value.numerator) / Decimal(value.denominator)).normalize()
        return format(d, "f")
    return f"{value.numerator}/{value.denominator}"


def normalize_number(token: str) -> str | None:
    """The normalised form of one number token, or None when it is not a number."""
    if token.isascii() and token.isdigit():  # the common case: a plain non-negative integer
        return str(int(token))
    value = _parse(token)
    if value is None:
        return None
    return _format(value, decimal_like="/" not in token)


def _first_number(text: str) -> str | None:
    for m in _NUM_RE.finditer(text):
        n = normalize_number(m.group(0))
        if n is not None:
            return n
    return None


def _last_number(text: str) -> str | None:
    for m in reversed(list(_NUM_RE.finditer(text))):
        n = normalize_number(m.group(0))
        if n is not None:
            return n
    return None


def extract_final_number(text: str | None) -> str | None:
    """The final numeric answer of ``text``, normalised (see the module docstring), or None."""
    if not text:
        return None
    text = _FRAC_RE.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    for content in reversed(boxed_contents(text)):
        n = _first_number(content.rsplit("=", 1)[-1]) or _first_number(content)
        if n is not None:
            return n
    for pattern in (_HASHES_RE, _PHRASE_RE):
        matches = list(pattern.finditer(text))
        for m in reversed(matches):
            n = normalize_number(m.group(1))
            if n is not None:
                return n
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        equals = list(_EQUALS_RE.finditer(lines[-1]))
        if equals:
            n = normalize_number(equals[-1].group(1))
            if n is not None:
                return n
    return _last_number(text)


def to_fraction(value: str | None) -> Fraction | None:
    """A numeric string (``"42"``, ``"-3"``, ``"$1,250"``, ``"0.75"``, ``"3/4"``) as a Fraction, or None."""
    if value is None:
        return None
    return _parse(value)


def numbers_equal(a: str | None, b: str | None) -> bool:
    """True when both are numbers with the same exact value (``"42" == "42.0"``, ``"0.75" == "3/4"``).

    Anything that is not a number (None, text) is equal to nothing.
    """
    fa, fb = to_fraction(a), to_fraction(b)
    return fa is not None and fb is not None and fa == fb
