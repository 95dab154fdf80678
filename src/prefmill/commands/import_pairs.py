"""`prefmill import-pairs FILE`: a labelled pairwise dataset as prompts, candidates and human
verdicts in the store, in one step (no Prefect, no model), with its fidelity report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefmill.recipe import file_digest
from prefmill.storage import Parent, Store

CODE_VERSION = "labelled-pairs-1"


def import_pairs(
    path: Path, *, dataset: str, root: str | None, annotator: str = "labels", ref: str = "labelled"
) -> dict[str, Any]:
    """Write the prompts, candidates and judgments versions of ``path`` and point ``ref`` at them;
    return {table: (version, rows)} and the judgments' fidelity report."""
    from prefmill.tasks.evaluation.fidelity import fidelity_report
    from prefmill.tasks.evaluation.labelled_pairs import labelled_tables

    prompts, candidates, judgments = labelled_tables(path, annotator)
    store = Store(root)
    config = {"labelled_pairs": path.name, "sha256": file_digest(path), "annotator": annotator}
    pm = store.write_version(
        dataset, "prompts", prompts, stage="prompts", code_version=CODE_VERSION, config=config
    )
    cm = store.write_version(
        dataset,
        "candidates",
        candidates,
        stage="synthesis",
        code_version=CODE_VERSION,
        config=config,
        parents=[Parent("prompts", pm.version)],
    )
    report = fidelity_report(judgments, candidates)
    jm = store.write_version(
        dataset,
        "judgments",
        judgments,
        stage="evaluation",
        code_version=CODE_VERSION,
        config=config,
        parents=[Parent("prompts", pm.version), Parent("candidates", cm.version)],
        stats={"fidelity": report, "human_verdicts": judgments.num_rows},
    )
    versions = {m.table: m.version for m in (pm, cm, jm)}
    store.write_ref(dataset, ref, versions, {"imported_from": str(path)})
    return {"tables": {m.table: (m.version, m.rows) for m in (pm, cm, jm)}, "ref": ref, "report": report}
