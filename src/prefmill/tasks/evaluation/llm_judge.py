"""LLM judges: a judge model scores candidates point-wise, pair-wise (both orders) or per rubric criterion.

One call of ``llm_judge`` judges one shard: it renders one judge prompt per unit (candidate, or
candidate pair and order) from a Jinja template, sends them to the engine (in batches bounded by
tokens: ``judge_batches``), parses the replies tolerantly (``parse.py``) and, for replies that do
not parse, asks once more with a repair prompt. Every unit gives rows of ``judgments``; a verdict
that still cannot be read is a row with ``parse_error`` set and the raw reply kept.

Conventions of the rows (see docs/tables.md):

* ``score`` is scaled to [0, 1]: ``(s - min_score) / (max_score - min_score)`` for a stated score
  ``s``; the rationale starts with the stated score (``7/10: ...``).
* pair mode: each pair (x, y), x < y by candidate_id, is judged in two orders, one row each. In a
  row, ``candidate_id`` is the response shown first (Response A) and ``other_candidate_id`` the one
  shown second: order ``ab`` shows x first (candidate_id = x), order ``ba`` shows y first
  (candidate_id = y). ``prefers_first`` is P(``candidate_id`` is better than ``other_candidate_id``)
  = P(Response A is better), so a consistent judge's ``ba`` row is about 1 - its ``ab`` row.
* seeds: ``seed_for(config.seed, judge, candidate_id, other_candidate_id, order)`` (and ``"repair"``
  for the repair request), so a re-run reproduces the verdicts where the engine allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pyarrow as pa

from prefmill.engines.base import (
    Engine,
    Generation,
    GenerationRequest,
    JsonSchema,
    Messages,
    SamplingParams,
)
from prefmill.errors import SchemaError
from prefmill.ids import content_id, seed_for
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.evaluation.llm_settings import EngineSettings, LLMJudgeSettings
from prefmill.tasks.evaluation.parse import PARSER_VERSION, parse_pair, parse_point, parse_rubric
from prefmill.tasks.evaluation.templates import Template, load_template

#: Bump when the rows an LLM judge writes for the same replies change meaning.
LLM_JUDGE_CODE_VERSION = "2"  # 2: structured output
KIND = "llm"
GRANULARITY = "outcome"

POINT_FORMAT = '{"score": <integer>, "rationale": "<one sentence>"}'
PAIR_FORMAT = '{"better": "A" or "B" or "tie", "strength": 1, 2 or 3, "rationale": "<one sentence>"}'


def json_schema(
    mode: str, criteria: Sequence[str] = (), min_score: int = 1, max_score: int = 10
) -> dict[str, Any]:
    """The JSON schema of a verdict, sent to engines that constrain their output to a schema.

    The verdict comes before the rationale (the key order of the stated formats), so a reply cut
    off in its rationale still parses, and scores are the stated scale's integers. The schema keeps
    to the subset every structured-output backend accepts (OpenAI's strict mode has no length
    limits and, on some models, no numeric bounds): every key required, no extra keys, enums."""
    score: dict[str, Any] = {"type": "integer", "enum": list(range(min_score, max_score + 1))}
    if len(score["enum"]) > 101:
        score = {"type": "integer", "minimum": min_score, "maximum": max_score}
    if mode == "pair":
        props: dict[str, Any] = {
            "better": {"type": "string", "enum": ["A", "B", "tie"]},
            "strength": {"type": "integer", "enum": [1, 2, 3]},
        }
    elif mode == "rubric":
        props = {c: dict(score) for c in criteria}
    else:
        props = {"score": score}
    props["rationale"] = {"type": "string"}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


# -- prompt pieces --------------------------------------------------------------------------------


def conversation_text(messages: Messages | None) -> str:
    """The chat as the judge sees it: the user's text alone for one message, else ``role: text``."""
    if not messages:
        return ""
    if len(messages) == 1:
        return str(messages[0].get("content") or "")
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


def history(messages: Messages | None) -> list[dict[str, str]]:
    """The turns before the last user message (system prompt, earlier user / assistant turns): the
    context a judge is shown, marked as such, before the turn the response answers."""
    msgs = list(messages or [])
    last = max((i for i, m in enumerate(msgs) if m.get("role") == "user"), default=len(msgs))
    return [{"role": str(m.get("role")), "content": str(m.get("content") or "")} for m in msgs[:last]]


def last_user(messages: Messages | None) -> str:
    users = [m for m in messages or [] if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def prompt_criteria(rubric: str | None, default: dict[str, str]) -> dict[str, str]:
    """Criteria of one prompt: its ``rubric`` when set, else ``default``.

    A rubric may be a JSON object (criterion -> description), a JSON list (of names, or of objects
    with ``name``/``criterion`` and ``description``), or plain text (one criterion, ``rubric``)."""
    if rubric is None or not rubric.strip():
        return dict(default)
    try:
        data = json.loads(rubric)
    except ValueError:
        return {"rubric": rubric.strip()}
    if isinstance(data, dict) and data:
        return {str(k).strip(): str(v) for k, v in data.items()}
    if isinstance(data, list) and data:
        out: dict[str, str] = {}
        for item in data:
            if isinstance(item, str):
                out[item.strip()] = item.strip()
            elif isinstance(item, dict):
                name = item.get("name") or item.get("criterion")
                if name:
                    out[str(name).strip()] = str(item.get("description") or name)
        if out:
            return out
    return {"rubric": rubric.strip()}


def rubric_text(rubric: str | None) -> str | None:
    """A prompt's rubric as one line of text for point and pair prompts."""
    if rubric is None or not rubric.strip():
        return None
    crit = prompt_criteria(rubric, {})
    if list(crit) == ["rubric"]:
        return crit["rubric"]
    return "; ".join(f"{k}: {v}" if k != v else k for k, v in crit.items())


# -- asking the engine ----------------------------------------------------------------------------


@dataclass
class Ask:
    """One judge request: the rendered prompt, its seed, and how to read the reply."""

    text: str
    seed: int
    parse: Callable[[str | None], Any]  # reply -> verdict with an ``error`` attribute (or errors dict)
    fmt: str  # the JSON the judge must write (shown by the repair prompt)
    schema: JsonSchema | None = None  # the same as a JSON schema, for engines with structured output


@dataclass
class Answer:
    raw: str | None  # the reply (with the repair reply appended after a retry)
    verdict: Any
    engine_error: str | None


def _failed(verdict: Any) -> str | None:
    errors = getattr(verdict, "errors", None)
    if isinstance(errors, dict):
        problems = [f"{k}: {v}" for k, v in errors.items() if v]
        return "; ".join(problems) or None
    return getattr(verdict, "error", None)


def structured(engine: Engine, wanted: bool) -> bool:
    """Whether asks to ``engine`` carry their JSON schema: wanted, and the engine constrains output
    to a schema (``supports_response_format``); otherwise the format stated in the prompt and the
    tolerant parser do the work."""
    return wanted and bool(getattr(engine, "supports_response_format", False))


def _generate(engine: Engine, requests: list[GenerationRequest]) -> list[Generation]:
    """Every request, in calls of at most ``judge_batches.TOKEN_BUDGET`` tokens, with progress."""
    from prefmill.tasks.evaluation.judge_batches import generate_in_budget

    return generate_in_budget(engine, requests)


def ask_all(
    engine: Engine,
    asks: list[Ask],
    *,
    temperature: float,
    max_new_tokens: int,
    repair: bool,
    repair_template: Template | None = None,
    structured_output: bool = True,
) -> list[Answer]:
    """Send every ask (in token-bounded batches); re-ask the unparseable ones once with the repair prompt.

    With ``structured_output`` and an engine that supports it, each ask's ``schema`` constrains the
    reply (see ``structured``)."""
    sampling = SamplingParams(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens)
    constrain = structured(engine, structured_output)

    def request(messages: Messages, seed: int, ask: Ask) -> GenerationRequest:
        return GenerationRequest(messages, sampling, seed, ask.schema if constrain else None)

    requests = [request([{"role": "user", "content": a.text}], a.seed, a) for a in asks]
    answers = []
    for ask, gen in zip(asks, _generate(engine, requests), strict=True):
        if gen.error is not None:
            answers.append(Answer(None, None, gen.error))
        else:
            answers.append(Answer(gen.text, ask.parse(gen.text), None))
    if not repair:
        return answers
    todo = [i for i, a in enumerate(answers) if a.engine_error is None and _failed(a.verdict)]
    if not todo:
        return answers
    template = repair_template or load_template("repair")
    retry = []
    for i in todo:
        ask, first = asks[i], answers[i]
        note = template.render(problem=_failed(first.verdict), format=ask.fmt)
        messages = [
            {"role": "user", "content": ask.text},
            {"role": "assistant", "content": first.raw or ""},
            {"role": "user", "content": note},
        ]
        retry.append(request(messages, seed_for(ask.seed, "repair"), ask))
    for i, gen in zip(todo, _generate(engine, retry), strict=True):
        first = answers[i]
        if gen.error is not None:
            continue  # keep the first reply and its parse error
        verdict = asks[i].parse(gen.text)
        raw = f"{first.raw}\n\n[repair]\n{gen.text}"
        if not _failed(verdict):
            answers[i] = Answer(raw, verdict, None)
        else:
            answers[i] = Answer(raw, first.verdict, None)
            _set_error(first.verdict, f"{_failed(first.verdict)} (also after the repair prompt)")
    return answers


def _set_error(verdict: Any, message: str) -> None:
    errors = getattr(verdict, "errors", None)
    if isinstance(errors, dict):
        for k, v in errors.items():
            if v:
                errors[k] = f"{v} (repair also failed)"
    else:
        verdict.error = message


# -- rows -----------------------------------------------------------------------------------------


def judgment_id(judge: str, candidate_id: str, other: str | None, criterion: str, order: str | None) -> str:
    """Content id of [judge, candidate_id, other_candidate_id, criterion, granularity, unit_index, order]."""
    return content_id([judge, candidate_id, other, criterion, GRANULARITY, None, order])


def judgments_table(rows: list[dict[str, Any]]) -> pa.Table:
    """A conforming ``judgments`` table from row dicts (missing keys are null)."""
    if not rows:
        return empty_table("judgments")
    schema = empty_table("judgments").schema
    full = []
    for r in rows:
        row = dict.fromkeys(schema.names)
        row.update(r)
        row["judgment_id"] = judgment_id(
            row["judge"], row["candidate_id"], row["other_candidate_id"], row["criterion"], row["order"]
        )
        row.setdefault("granularity", GRANULARITY)
        row["granularity"] = row["granularity"] or GRANULARITY
        full.append(row)
    return conform("judgments", pa.Table.from_pylist(full, schema=schema))


def scaled(score: float | None, lo: float, hi: float) -> float | None:
    return None if score is None else (score - lo) / (hi - lo)


def _stated(score: float | None, hi: float, rationale: str | None) -> str | None:
    if score is None:
        return rationale
    return f"{score:g}/{hi:g}: {rationale}" if rationale else f"{score:g}/{hi:g}"


def _need(cands: pa.Table, who: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in cands.column_names]
    if missing:
        raise SchemaError(
            f"{who}: the candidates shard lacks column(s) {', '.join(missing)}; join the prompts' "
            "messages, reference and rubric onto the candidates (the evaluation flow does)"
        )


def _rows(cands: pa.Table) -> list[dict[str, Any]]:
    cols = [
        c
        for c in ("candidate_id", "prompt_id", "response", "messages", "reference", "rubric", "error")
        if c in cands.column_names
    ]
    rows = cands.select(cols).to_pylist()
    return [r for r in rows if r.get("error") is None and r.get("response") is not None]


def template_fingerprint(config: Any, templates: dict[str, str]) -> dict[str, Any]:
    """What besides its config decides a model judge's output: the text of its templates (config
    field -> built-in template it replaces), of the repair template when it repairs, and the parser."""
    out: dict[str, Any] = {"parser": PARSER_VERSION, "code": LLM_JUDGE_CODE_VERSION}
    for field, builtin in templates.items():
        out[field] = load_template(builtin, getattr(config, field)).sha256
    if getattr(config, "repair", False):
        out["repair"] = load_template("repair").sha256
    return out


# -- the judge ------------------------------------------------------------------------------------


def _engine(config: EngineSettings, engine: Engine | None) -> Engine:
    if engine is not None:
        return engine
    from prefmill.engines.registry import get_engine

    return get_engine(config.engine)


def llm_judge(config: LLMJudgeSettings, cands: pa.Table, engine: Engine | None = None) -> pa.Table:
    """Judge the usable rows of ``cands`` (no ``error``, a response) with ``config``.

    ``cands`` needs candidate_id, prompt_id, response and the prompt's messages; reference and rubric
    are used when present."""
    _need(cands, f"llm judge {config.judge_name}", ("candidate_id", "prompt_id", "response", "messages"))
    rows = _rows(cands)
    if not rows:
        return empty_table("judgments")
    eng = _engine(config, engine)
    template = load_template(config.mode, config.template)
    lo, hi = float(config.min_score), float(config.max_score)
    judge = config.judge_name
    asks: list[Ask] = []
    units: list[dict[str, Any]] = []  # what each ask's rows are about

    def common(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "conversation": conversation_text(r.get("messages")),
            "history": history(r.get("messages")),
            "prompt": last_user(r.get("messages")),
            "reference": r.get("reference"),
            "min_score": config.min_score,
            "max_score": config.max_score,
        }

    if config.mode == "pair":
        pair_schema = json_schema("pair")
        by_prompt: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_prompt.setdefault(r["prompt_id"], []).append(r)
        for pid, group in by_prompt.items():
            group = sorted(group, key=lambda r: r["candidate_id"])
            pairs = list(combinations(group, 2))[: config.max_pairs_per_prompt]
            for a, b in pairs:
                for order in ("ab", "ba") if config.swap else ("ab",):
                    first, second = (a, b) if order == "ab" else (b, a)
                    text = template.render(
                        **common(a),
                        rubric=rubric_text(a.get("rubric")),
                        response_a=first["response"],
                        response_b=second["response"],
                    )
                    seed = seed_for(config.seed, judge, a["candidate_id"], b["candidate_id"], order)
                    asks.append(Ask(text, seed, parse_pair, PAIR_FORMAT, pair_schema))
                    units.append(
                        {
                            "prompt_id": pid,
                            "a": first["candidate_id"],
                            "b": second["candidate_id"],
                            "order": order,
                        }
                    )
    else:
        for r in rows:
            if config.mode == "rubric":
                crit = prompt_criteria(r.get("rubric"), config.criteria)
                names = list(crit)
                text = template.render(
                    **common(r),
                    criteria=[{"name": k, "description": v} for k, v in crit.items()],
                    response=r["response"],
                )
                fmt = "{" + ", ".join(f'"{k}": <integer>' for k in names) + ', "rationale": "..."}'
                parse = _rubric_parser(names, lo, hi)
                schema = json_schema("rubric", names, config.min_score, config.max_score)
            else:
                names = ["overall"]
                text = template.render(
                    **common(r), rubric=rubric_text(r.get("rubric")), response=r["response"]
                )
                fmt, parse = POINT_FORMAT, _point_parser(lo, hi)
                schema = json_schema("point", (), config.min_score, config.max_score)
            seed = seed_for(config.seed, judge, r["candidate_id"], None, None)
            asks.append(Ask(text, seed, parse, fmt, schema))
            units.append({"prompt_id": r["prompt_id"], "a": r["candidate_id"], "criteria": names})

    answers = ask_all(
        eng,
        asks,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        repair=config.repair,
        structured_output=config.structured_output,
    )
    out: list[dict[str, Any]] = []
    base = {"judge": judge, "kind": KIND, "granularity": GRANULARITY}
    for unit, ans in zip(units, answers, strict=True):
        if config.mode == "pair":
            v = ans.verdict
            error = f"engine error: {ans.engine_error}" if ans.engine_error else v.error
            prefers = None if error or v is None else v.prefers_a
            out.append(
                {
                    **base,
                    "prompt_id": unit["prompt_id"],
                    "candidate_id": unit["a"],
                    "other_candidate_id": unit["b"],
                    "mode": "pair",
                    "criterion": "overall",
                    "order": unit["order"],
                    "prefers_first": prefers,
                    "rationale": None if v is None else v.rationale,
                    "raw": ans.raw,
                    "parse_error": error,
                }
            )
        elif config.mode == "rubric":
            v = ans.verdict
            for c in unit["criteria"]:
                error = f"engine error: {ans.engine_error}" if ans.engine_error else v.errors.get(c)
                score = None if error else v.scores.get(c)
                why = None if v is None else (v.per_criterion_rationale.get(c) or v.rationale)
                out.append(
                    {
                        **base,
                        "prompt_id": unit["prompt_id"],
                        "candidate_id": unit["a"],
                        "mode": "point",
                        "criterion": c,
                        "score": scaled(score, lo, hi),
                        "rationale": _stated(score, hi, why),
                        "raw": ans.raw,
                        "parse_error": error,
                    }
                )
        else:
            v = ans.verdict
            error = f"engine error: {ans.engine_error}" if ans.engine_error else v.error
            score = None if error else v.score
            out.append(
                {
                    **base,
                    "prompt_id": unit["prompt_id"],
                    "candidate_id": unit["a"],
                    "mode": "point",
                    "criterion": "overall",
                    "score": scaled(score, lo, hi),
                    "rationale": _stated(score, hi, None if v is None else v.rationale),
                    "raw": ans.raw,
                    "parse_error": error,
                }
            )
    return judgments_table(out)


def _point_parser(lo: float, hi: float) -> Callable[[str | None], Any]:
    return lambda text: parse_point(text, lo, hi)


def _rubric_parser(names: list[str], lo: float, hi: float) -> Callable[[str | None], Any]:
    return lambda text: parse_rubric(text, names, lo, hi)
