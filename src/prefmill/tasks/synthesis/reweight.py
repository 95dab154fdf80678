"""Policy-aware reweighting (WPO / WRPO style): log-probs of candidates under a given model.

``score_into`` fills a column with each candidate's sum log-prob (``Engine.score``: the response and
its end-of-turn token given the chat prompt) under an engine. The synthesis stage uses it twice:
``policy_logprob`` under the target policy π_θ (``synthesis.policy_engine``) for every successful
candidate, and ``logprob`` under the data policy π_data of an offline source (``data_policy``), so that
instantiation can weight a pair by π_θ/π_data = exp(policy_logprob - logprob).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from prefmill.engines.base import Engine, Messages
from prefmill.errors import EngineError


def score_into(
    cands: pa.Table,
    messages: dict[str, Messages],
    engine: Engine,
    column: str,
    mask: list[bool] | None = None,
) -> tuple[pa.Table, int]:
    """``cands`` with ``column`` set to the engine's log-prob on rows that have a response and no error
    (and ``mask`` true, when given); other rows keep their value. Returns the table and how many rows
    were scored (one ``score`` call for all of them)."""
    ok = pc.and_(pc.is_valid(cands.column("response")), pc.is_null(cands.column("error"))).to_pylist()
    rows = [i for i, good in enumerate(ok) if good and (mask is None or mask[i])]
    if not rows:
        return cands, 0
    pids = cands.column("prompt_id").to_pylist()
    texts = cands.column("response").to_pylist()
    items = [(messages[pids[i]], texts[i]) for i in rows]
    scores = engine.score(items)
    if len(scores) != len(items):
        raise EngineError(f"engine {engine.name} scored {len(scores)} of {len(items)} responses")
    values = cands.column(column).to_pylist()
    for i, s in zip(rows, scores, strict=True):
        values[i] = float(s)
    index = cands.column_names.index(column)
    return cands.set_column(index, cands.schema.field(index), pa.array(values, pa.float64())), len(rows)
