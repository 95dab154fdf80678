"""The stepwise-supervision rows of a steps version as an Arrow table (what ``trl-stepwise`` exports),
for callers that train on them without writing files (``prefmill train --method prm``)."""

from __future__ import annotations

import pyarrow as pa

from prefmill.errors import InputError
from prefmill.exports import step_judgments
from prefmill.storage import Manifest, Store
from prefmill.storage.duck import bind, connect, lock_down, to_arrow, version_paths
from prefmill.storage.tables.steps import STEPWISE_SQL


def stepwise_labels(store: Store, steps: Manifest) -> Manifest:
    """The judgments version whose step-level rows label ``steps``; a one-line error when none."""
    labels = step_judgments(store, steps)
    if labels is None:
        raise InputError(
            f"steps@{steps.version} has no judgments made from it: add step-level judges (rollout, "
            "rollout_search, step_llm) to the recipe and build again"
        )
    return labels


def stepwise_rows(store: Store, steps: Manifest) -> pa.Table:
    """``prompt`` (the last user message), ``completions`` (the steps), ``labels`` (one bool per step),
    ``prompt_id``, ``candidate_id``: one row per candidate whose every step has a label."""
    labels = stepwise_labels(store, steps)
    con = connect()
    try:
        bind(con, store, "source", steps)
        bind(con, store, "judgments", labels)
        bound = [steps, labels]
        prompts = next((a for a in store.ancestors(steps) if a.table == "prompts"), None)
        if prompts is None:
            raise InputError(f"steps@{steps.version} has no prompts table in its lineage")
        bind(con, store, "prompts", prompts)
        bound.append(prompts)
        lock_down(con, version_paths(store, bound))
        return to_arrow(con.sql(STEPWISE_SQL))
    finally:
        con.close()
