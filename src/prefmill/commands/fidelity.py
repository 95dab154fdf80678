"""`prefmill report fidelity [REF]`: the fidelity report of a judgments version.

The report is computed when the evaluation stage publishes the version and kept in its manifest
(``stats.fidelity``); for versions made before that, it is computed here from the tables (without
calibration, which needs the judge models).
"""

from __future__ import annotations

import json
from typing import Any

from prefmill.commands import pick_dataset
from prefmill.errors import NotFoundError
from prefmill.storage import DEFAULT_REF, Manifest, Store
from prefmill.storage.hints import command
from prefmill.ui import console, render_records


def judgments_manifest(store: Store, dataset: str, ref: str) -> Manifest:
    """``ref`` is a ref name (its judgments version), ``judgments@VERSION`` or a version id (prefix)."""
    if ref.startswith("judgments@"):
        return store.resolve_version(dataset, "judgments", ref.partition("@")[2])
    if ref in store.refs(dataset):
        return store.resolve_version(dataset, "judgments", None, ref)
    try:
        return store.resolve_version(dataset, "judgments", ref)
    except NotFoundError:
        refs = ", ".join(store.refs(dataset)) or "none"
        raise NotFoundError(
            f"'{ref}' is neither a ref of dataset '{dataset}' (refs: {refs}) nor a judgments version; "
            f"`{command('tables', root=store.root, dataset=dataset)}` lists them"
        ) from None


def load_report(store: Store, m: Manifest) -> dict[str, Any]:
    """The stored report, or one computed now from the version and its candidates."""
    stored = m.stats.get("fidelity")
    if isinstance(stored, dict):
        return stored
    from prefmill.tasks.evaluation.fidelity import fidelity_report
    from prefmill.tasks.evaluation.judges.registry import judge_engines

    parent = next((p for p in m.parents if p.table == "candidates"), None)
    if parent is None:
        raise NotFoundError(f"judgments@{m.version} has no candidates parent to measure lengths on")
    cands = store.read_arrow(
        store.manifest(m.dataset, "candidates", parent.version),
        columns=["candidate_id", "response", "n_tokens", "generator"],
    )
    engines = judge_engines(j for j in m.config.get("judges", []) if isinstance(j, dict))
    report = fidelity_report(store.read_arrow(m), cands, judge_engines=engines)
    report["computed_now"] = True
    return report


def _fmt(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def judge_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per judge: the numbers of the report's `judges` part."""
    rows = []
    for name, r in sorted(report.get("judges", {}).items()):
        pc = r.get("position_consistency") or {}
        gold = r.get("gold_agreement") or {}
        cal = r.get("calibration") or {}
        length = r.get("length") or {}
        raw = [v.get("spearman_raw") for v in length.values() if v.get("spearman_raw") is not None]
        lc = [v.get("spearman_lc") for v in length.values() if v.get("spearman_lc") is not None]
        passfail = bool(length) and not any(v.get("controlled", True) for v in length.values())
        sp = r.get("self_preference") or {}
        rows.append(
            {
                "judge": name,
                "kind": r.get("kind", ""),
                "mode": r.get("mode", ""),
                "rows": r.get("rows", 0),
                "parse_fail": _fmt(r.get("parse_failure_rate")),
                "position_consistency": f"{_fmt(pc.get('rate'))} ({pc['consistent']}/{pc['pairs']})"
                if pc
                else "",
                "gold_agreement": f"{_fmt(gold.get('rate'))} (n={gold.get('n')})" if gold else "",
                "calibration": f"{_fmt(cal.get('accuracy'))} ({cal.get('judged')}/{cal.get('pairs')})"
                if cal
                else "",
                "length_rho_raw": _fmt(max(raw, key=abs)) if raw else "",
                "length_rho_lc": _fmt(max(lc, key=abs)) if lc else "n/a (pass/fail)" if passfail else "",
                "self_pref": (
                    f"{sp.get('family')}: own {_fmt(sp.get('mean_own'))} "
                    f"vs other {_fmt(sp.get('mean_other'))}"
                    if sp
                    else ""
                ),
            }
        )
    return rows


def _share(part: dict[str, Any] | None) -> str:
    return f"{_fmt(part.get('rate'))} (n={part.get('n')})" if part and part.get("n") else ""


def position_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per pair judge: ties, the share of decided verdicts favouring the first position, and
    gold agreement over the pairs parsed in both orders (swap-debiased) and in one order only."""
    rows = []
    for name, r in sorted(report.get("judges", {}).items()):
        if (bias := r.get("position_bias")) is None:
            continue
        gold = r.get("gold_agreement") or {}
        rows.append(
            {
                "judge": name,
                "verdicts": bias.get("verdicts", 0),
                "ties": f"{bias.get('ties', 0)} ({_fmt(bias.get('tie_rate'))})",
                "first_position": f"{_fmt(bias.get('first_rate'))} ({bias.get('first')}/{bias.get('n')})",
                "gold_both_orders": _share(gold.get("both_orders")),
                "gold_single_order": _share(gold.get("single_order")),
            }
        )
    return rows


def show_fidelity(
    ref: str = DEFAULT_REF, *, root: str | None, dataset: str | None, fmt: str = "table"
) -> None:
    """`prefmill report fidelity [REF]`: how far the judges can be trusted -- parse failures, position
    consistency, ties and the first-position share, length bias (raw vs length-controlled), agreement
    between judges and with gold (swap-debiased and single-order apart), self-preference. ``ref`` is a
    ref name, ``judgments@VERSION`` or a judgments version."""
    store = Store(root)
    ds = pick_dataset(store, dataset)
    m = judgments_manifest(store, ds, ref)
    report = load_report(store, m)
    if fmt == "json":
        print(json.dumps({"dataset": ds, "judgments": m.version, **report}, indent=1, default=str))
        return
    title = f"fidelity of judgments@{m.version}" + (" (computed now)" if report.get("computed_now") else "")
    render_records(judge_records(report), "table", title=title)
    if positions := position_records(report):
        render_records(positions, "table", title="pair judges: position bias, swap-debiased gold agreement")
    agreement = report.get("agreement", {})
    pairs = [
        {
            "judges": " ~ ".join(p["judges"]),
            "pairs": p["n"],
            "cohen_kappa": _fmt(p.get("cohen_kappa")),
            "scores": p["n_scores"],
            "spearman": _fmt(p.get("spearman")),
        }
        for p in agreement.get("pairs", [])
    ]
    if pairs:
        render_records(pairs, "table", title="inter-judge agreement")
    if fleiss := agreement.get("fleiss_kappa"):
        console().print(
            f"Fleiss' kappa over {fleiss['n']} pairs every judge labelled: {_fmt(fleiss.get('value'))}"
        )
    _show_human(report)
    for warning in report.get("warnings", []):
        console().print(f"[yellow]warning:[/yellow] {warning}")


def _show_human(report: dict[str, Any]) -> None:
    """Inter-annotator and human-vs-judge agreement (`prefmill annotate --publish` verdicts)."""
    from prefmill.tasks.evaluation.human_agreement import human_records

    pairs, judges, fleiss = human_records(report)
    if pairs:
        render_records(pairs, "table", title="inter-annotator agreement")
    if fleiss:
        console().print(fleiss)
    if judges:
        render_records(judges, "table", title="judges vs the annotators' majority")
