"""Tolerant parsing of judge-model replies: JSON first (also inside code fences, after prose, with
single quotes or trailing commas, or cut off by the token limit), then patterns judges commonly
write (``Score: 7``, ``[[7]]``, ``7/10``, ``[[A]]``, ``Response B is better``, ``Helpfulness: 4``).

Every parser returns a value or a one-line ``error`` saying what was missing; it never raises on
model text. Parser changes change verdicts, so ``PARSER_VERSION`` enters the judgments version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: Bump whenever a reply parses differently (it is part of the judgments version, DESIGN §8).
PARSER_VERSION = "2"  # 2: JSON cut off by the token limit is closed and read
RATIONALE_KEYS = ("rationale", "reason", "reasoning", "explanation", "justification", "comment")
#: pair mode: strength 1 / 2 / 3 moves the preference 1/6, 2/6, 3/6 away from 0.5
STRENGTH_STEP = 1.0 / 6.0
DEFAULT_STRENGTH = 2
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_ -]*?)\s*:")


@dataclass
class PointVerdict:
    score: float | None  # on the stated scale
    rationale: str | None
    error: str | None


@dataclass
class PairVerdict:
    prefers_a: float | None  # P(the response shown as A is better), in [0, 1]
    rationale: str | None
    error: str | None


@dataclass
class RubricVerdict:
    scores: dict[str, float | None]  # criterion -> score on the stated scale
    errors: dict[str, str | None]  # criterion -> why it has no score
    rationale: str | None
    per_criterion_rationale: dict[str, str] = field(default_factory=dict)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        pass
    fixed = _TRAILING_COMMA.sub(r"\1", text)
    if '"' not in fixed:
        fixed = fixed.replace("'", '"')
    fixed = _BARE_KEY.sub(lambda m: f'{m.group(1)}"{m.group(2).strip()}":', fixed)
    try:
        return json.loads(fixed)
    except (json.JSONDecodeError, ValueError):
        return None


def close_truncated(text: str) -> str | None:
    """``text`` (a JSON object cut off mid-way, e.g. by the token limit) with its open string, key
    and brackets closed; None when nothing is open. Structured output puts the verdict before the
    rationale, so a reply cut inside its rationale still carries a whole verdict."""
    stack: list[str] = []
    in_str = escaped = False
    key = False  # the last string opened where an object key goes
    last = ""  # the last significant character outside strings
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
                last = '"'
            continue
        if ch == '"':
            in_str = True
            key = bool(stack) and stack[-1] == "}" and last in ("{", ",")
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
        if not ch.isspace():
            last = ch
    if not stack:
        return None
    out = text[:-1] if escaped else text
    if in_str:
        out += '"'
        last = '"'
    out = out.rstrip()
    if not in_str and last not in ('"', ",", ":", "{", "[", "}", "]"):
        # a number or literal at the very end may itself be cut ("1" of "10"): drop it
        out = re.sub(r"[-+.\w]+$", "", out).rstrip()
        last = out[-1:] or last
    if last == ",":
        out = out[:-1]
    elif last == ":" or (last == '"' and key):
        out += " null" if last == ":" else ": null"
    return out + "".join(reversed(stack))


def json_objects(text: str) -> list[dict[str, Any]]:
    """JSON objects found in ``text``: the whole text, fenced blocks, then every ``{...}`` span."""
    found: list[dict[str, Any]] = []
    try:  # the common case: the reply is exactly one JSON object
        whole = json.loads(text)
        if isinstance(whole, dict):
            return [whole]
    except ValueError:
        pass
    candidates = [text.strip(), *(m.group(1).strip() for m in _FENCE.finditer(text))]
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            obj, _ = decoder.raw_decode(text, start)
            if isinstance(obj, dict):
                found.append(obj)
            continue
        except json.JSONDecodeError:
            pass
        depth, end = 0, None
        for i in range(start, len(text)):  # balanced braces, for the lenient loader
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i + 1
                break
        if end is not None:
            candidates.append(text[start:end])
    for c in candidates:
        obj = _loads(c) if c else None
        if isinstance(obj, dict):
            found.append(obj)
    if not found and "{" in text:  # cut off by the token limit: close it and read what is there
        closed = close_truncated(text[text.index("{") :])
        obj = _loads(closed) if closed else None
        if isinstance(obj, dict):
            found.append(obj)
    return found


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in obj.items()}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*" + _NUMBER + r"\s*(?:/\s*\d+)?\s*", value)
        return float(m.group(1)) if m else None
    if isinstance(value, dict):
        inner = _lower_keys(value)
        for key in ("score", "rating", "value"):
            if key in inner:
                return _number(inner[key])
    return None


def _rationale(obj: dict[str, Any]) -> str | None:
    low = _lower_keys(obj)
    for key in RATIONALE_KEYS:
        if isinstance(low.get(key), str) and low[key].strip():
            return low[key].strip()
    return None


def _snippet(text: str, limit: int = 500) -> str | None:
    text = text.strip()
    return (text[:limit] + "…" if len(text) > limit else text) or None


def _in_range(score: float, lo: float, hi: float) -> str | None:
    return None if lo <= score <= hi else f"score {score:g} is outside the scale {lo:g}-{hi:g}"


_POINT_PATTERNS = (
    re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]"),
    re.compile(r"\b(?:score|rating|grade)\b\s*(?:is|of|=|:)?\s*\**\s*\[?" + _NUMBER, re.I),
)


def parse_point(text: str | None, lo: float, hi: float) -> PointVerdict:
    """A score on the scale ``lo..hi``: JSON ``score``/``rating``, then ``[[n]]``, ``Score: n``,
    ``n/hi`` or ``n out of hi``, then a reply that is only a number."""
    if text is None or not text.strip():
        return PointVerdict(None, None, "empty reply")
    for obj in json_objects(text):
        low = _lower_keys(obj)
        for key in ("score", "rating", "grade", "overall"):
            if key in low:
                score = _number(low[key])
                if score is None:
                    return PointVerdict(None, _rationale(obj), f"JSON '{key}' is not a number: {low[key]!r}")
                return PointVerdict(score, _rationale(obj), _in_range(score, lo, hi))
    patterns = [
        *_POINT_PATTERNS,
        re.compile(_NUMBER + r"\s*(?:/|out of)\s*" + re.escape(f"{hi:g}") + r"\b", re.I),
        re.compile(r"^\s*" + _NUMBER + r"\s*\.?\s*$"),
    ]
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            score = float(m.group(1))
            return PointVerdict(score, _snippet(text), _in_range(score, lo, hi))
    return PointVerdict(None, None, "no score found (expected JSON {\"score\": n} or 'Score: n')")


_PAIR_PATTERNS = (
    (re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.I), None),
    (
        re.compile(
            r"\b(?:winner|verdict|better(?: response)?|preferred|choice)\b\s*(?:is|:|=)\s*"
            r"(?:response\s*|assistant\s*)?\**\(?\"?\b(A|B|tie)\b",
            re.I,
        ),
        None,
    ),
    (
        re.compile(
            r"\b(?:response|assistant|answer)\s*\(?(A|B)\)?\s*(?:is|was)\s*(?:clearly\s*|much\s*|"
            r"slightly\s*)?(?:better|superior|preferred|more helpful)",
            re.I,
        ),
        None,
    ),
    (re.compile(r"\b(?:both (?:responses )?are equally|it'?s a tie|equally good)\b", re.I), "tie"),
)


def _side(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip().strip("\"'[]().* ").lower()
    v = v.removeprefix("response ").removeprefix("assistant ").strip()
    if v in ("a", "1", "first"):
        return "a"
    if v in ("b", "2", "second"):
        return "b"
    if v in ("tie", "c", "equal", "both", "none", "draw"):
        return "tie"
    return None


def _strength(value: Any) -> int:
    n = _number(value)
    if n is None:
        return DEFAULT_STRENGTH
    return int(min(3, max(1, round(n))))


def pair_preference(side: str, strength: int) -> float:
    """P(A better) from a side ('a', 'b', 'tie') and a strength 1..3."""
    if side == "tie":
        return 0.5
    step = STRENGTH_STEP * strength
    return 0.5 + step if side == "a" else 0.5 - step


def parse_pair(text: str | None) -> PairVerdict:
    """Which response is better: JSON ``better``/``winner`` (``A``, ``B``, ``tie``) with ``strength``
    1-3, then ``[[A]]``/``[[B]]``/``[[C]]`` (C: tie), ``winner: A``, ``Response B is better``."""
    if text is None or not text.strip():
        return PairVerdict(None, None, "empty reply")
    for obj in json_objects(text):
        low = _lower_keys(obj)
        for key in ("better", "winner", "preferred", "verdict", "choice"):
            if key in low:
                side = _side(low[key])
                if side is None:
                    return PairVerdict(
                        None, _rationale(obj), f"JSON '{key}' is not A, B or tie: {low[key]!r}"
                    )
                return PairVerdict(
                    pair_preference(side, _strength(low.get("strength"))), _rationale(obj), None
                )
    strength_m = re.search(r"\bstrength\b\s*[:=]?\s*([123])", text, re.I)
    strength = int(strength_m.group(1)) if strength_m else DEFAULT_STRENGTH
    for pattern, fixed in _PAIR_PATTERNS:
        m = pattern.search(text)
        if m:
            side = fixed or _side(m.group(1))
            if side is not None:
                return PairVerdict(pair_preference(side, strength), _snippet(text), None)
    return PairVerdict(None, None, 'no verdict found (expected JSON {"better": "A"|"B"|"tie"})')


def parse_rubric(text: str | None, criteria: list[str], lo: float, hi: float) -> RubricVerdict:
    """One score per criterion: JSON keys named like the criteria (also nested ``{"score": n}`` or
    under ``scores``), then ``Criterion: n`` patterns. A criterion without a score gets an error."""
    scores: dict[str, float | None] = dict.fromkeys(criteria)
    errors: dict[str, str | None] = dict.fromkeys(criteria)
    if text is None or not text.strip():
        return RubricVerdict(scores, dict.fromkeys(criteria, "empty reply"), None)
    rationale: str | None = None
    per: dict[str, str] = {}
    for obj in json_objects(text):
        low = _lower_keys(obj)
        if isinstance(low.get("scores"), dict):
            low = {**low, **_lower_keys(low["scores"])}
        hits = [c for c in criteria if c.lower() in low and scores[c] is None]
        for c in hits:
            value = low[c.lower()]
            score = _number(value)
            if score is None:
                errors[c] = f"JSON '{c}' is not a number: {value!r}"
            else:
                scores[c], errors[c] = score, _in_range(score, lo, hi)
                if isinstance(value, dict) and (r := _rationale(value)):
                    per[c] = r
        if hits:
            rationale = rationale or _rationale(obj)
    for c in criteria:
        if scores[c] is None and errors[c] is None:
            m = re.search(
                re.escape(c) + r"\W{0,4}\s*(?:score)?\s*(?:is|:|=|-)?\s*\**\s*" + _NUMBER, text, re.I
            )
            if m:
                score = float(m.group(1))
                scores[c], errors[c] = score, _in_range(score, lo, hi)
                rationale = rationale or _snippet(text)
            else:
                errors[c] = f"no score for criterion '{c}'"
    for c in criteria:
        if errors[c] is not None:
            scores[c] = None
    return RubricVerdict(scores, errors, rationale, per)
