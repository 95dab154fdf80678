"""The fidelity gate: the thresholds of ``evaluation.fidelity`` a judge's report must meet before
instantiation runs.

The gate is on by default. A threshold left at its default applies to the judges whose verdicts come
from a model (row kinds ``llm`` and ``reward_model``: a verifier or a heuristic has no position bias
and its own notion of a parse failure), once its figure rests on at least ``min_judged`` verdicts (a
handful of pairs says nothing); a threshold the recipe sets applies to every judge it can be measured
for, on any number of verdicts. ``enforce: false`` keeps the report and stops nothing; a threshold set
to null is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefmill.errors import FidelityError
from prefmill.tasks.evaluation.fidelity_tables import MODEL_KINDS

FIRST = "share of verdicts favouring the first position"


def _figures(r: Mapping[str, Any]) -> dict[str, tuple[str, float | None, int]]:
    """threshold field -> (figure, its value, the number of verdicts it rests on) of a judge's report."""
    out: dict[str, tuple[str, float | None, int]] = {}
    if (pc := r.get("position_consistency")) is not None:
        out["min_position_consistency"] = ("position consistency", pc.get("rate"), pc.get("pairs", 0))
    if (pb := r.get("position_bias")) is not None:
        out["max_first_position_rate"] = (FIRST, pb.get("first_rate"), pb.get("n", 0))
    if "parse_failure_rate" in r:
        out["max_parse_failure_rate"] = ("parse failure rate", r["parse_failure_rate"], r.get("rows", 0))
    cal, gold = r.get("calibration") or {}, r.get("gold_agreement") or {}
    if cal.get("accuracy") is not None:
        out["min_gold_agreement"] = ("calibration accuracy", cal["accuracy"], cal.get("judged", 0))
    elif gold.get("rate") is not None:
        out["min_gold_agreement"] = ("gold agreement", gold["rate"], gold.get("n", 0))
    raw = [(abs(v["spearman_raw"]), v.get("n", 0)) for v in (r.get("length") or {}).values()
           if v.get("spearman_raw") is not None]  # fmt: skip
    if raw:
        value, n = max(raw)
        out["max_length_correlation"] = ("length correlation", value, n)
    return out


def _fails(field: str, value: float, limit: float) -> str | None:
    """The comparison ``value`` fails, or None."""
    if field.startswith("min_"):
        return "<" if value < limit else None
    if field == "max_first_position_rate":  # always "B" is as biased as always "A"
        return ">" if value > limit else f"< 1 - {limit} =" if value < 1 - limit else None
    return ">" if value > limit else None


def check_thresholds(report: Mapping[str, Any], thresholds: Any) -> list[str]:
    """Every threshold a judge of ``report`` fails, one message each (empty: all pass)."""
    if not getattr(thresholds, "enforce", True):
        return []
    explicit = set(getattr(thresholds, "model_fields_set", set()))
    least = getattr(thresholds, "min_judged", 0) or 0
    problems = []
    for judge, r in sorted(report.get("judges", {}).items()):
        model = r.get("kind") in MODEL_KINDS
        for field, (figure, value, n) in _figures(r).items():
            limit = getattr(thresholds, field, None)
            if limit is None or value is None:
                continue
            if field not in explicit and (not model or n < least):
                continue  # a default threshold: model judges, on enough verdicts
            if (op := _fails(field, value, limit)) is not None:
                word = "too inconsistent" if "consistency" in field else "fails a fidelity check"
                problems.append(
                    f"judge '{judge}' {word}: {figure} {value:.3f} {op} evaluation.fidelity.{field} {limit}"
                    f" (over {n} verdicts)"
                )
    return problems


def enforce(
    report: Mapping[str, Any], thresholds: Any, where: str, hint: str = "prefmill report fidelity"
) -> None:
    """Raise ``FidelityError`` naming every failed threshold, in one line (``hint``: the command
    that shows the whole report)."""
    problems = check_thresholds(report, thresholds)
    if problems:
        raise FidelityError(
            f"{where}: " + "; ".join(problems) + " -- instantiation did not run, nothing was published "
            "after the judgments; fix the judge, or relax the threshold in the recipe's "
            f"evaluation.fidelity (`enforce: false` turns the gate off; `{hint}` shows the whole report)"
        )
