"""A small build written straight to a store (no model, no Prefect) for the annotation tests: prompts
(each carries a ``<script>``), candidates (one response does too), judgments of a point judge and a
pair judge in both orders, and the ``latest`` ref."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from prefmill.ids import content_id
from prefmill.storage import Parent, Store, empty_table

DATASET = "ann"
XSS = "<script>document.title='pwned'</script><img src=x onerror=\"window.pwned=1\">"


def _judgment(judge: str, kind: str, mode: str, pid: str, a: str, b: str | None, **kw: object) -> dict:
    row = {
        "judgment_id": content_id([judge, a, b, kw.get("order")]),
        "prompt_id": pid,
        "candidate_id": a,
        "other_candidate_id": b,
        "judge": judge,
        "kind": kind,
        "mode": mode,
        "criterion": "overall",
        "granularity": "outcome",
        "unit_index": None,
        "order": None,
        "score": None,
        "prefers_first": None,
        "rationale": None,
        "raw": None,
        "parse_error": None,
    }
    row.update(kw)
    return row


def write_build(root: Path, n_prompts: int = 4, k: int = 3, rubric: str | None = None) -> Store:
    """``n_prompts`` prompts with ``k`` candidates each; candidate 0 of prompt 0 is an XSS attempt."""
    store = Store(str(root))
    prompts, cands, judg = [], [], []
    for p in range(n_prompts):
        pid = content_id({"p": p})
        prompts.append(
            {
                "prompt_id": pid,
                "messages": [{"role": "user", "content": f"Question {p} <b>bold?</b> {XSS}"}],
                "source": "unit",
                "reference": f"ref {p}" if p % 2 == 0 else None,
                "rubric": rubric,
                "meta": json.dumps({"p": p}),
            }
        )
        ids = []
        for c in range(k):
            cid = content_id({"p": p, "c": c})
            ids.append(cid)
            cands.append(
                {
                    "candidate_id": cid,
                    "prompt_id": pid,
                    "response": XSS if (p, c) == (0, 0) else f"answer {p}.{c}",
                    "generator": "unit:model",
                    "origin": "offline",
                    "sampling": "{}",
                    "sample_index": c,
                    "n_tokens": 5 + c,
                    "finish_reason": "stop",
                    "logprob": None,
                    "latency_ms": 1.0,
                    "error": None,
                }
            )
            judg.append(
                _judgment("points", "verifier", "point", pid, cid, None, score=float((c + p) % k) / k)
            )
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                pa_ = 0.9 if (p + i) % 2 else 0.5
                judg.append(_judgment("pairs", "llm", "pair", pid, a, b, order="ab", prefers_first=pa_))
                judg.append(_judgment("pairs", "llm", "pair", pid, b, a, order="ba", prefers_first=0.5))
    tables = {}
    parents: list[Parent] = []
    for name, rows in (("prompts", prompts), ("candidates", cands), ("judgments", judg)):
        schema = empty_table(name).schema
        data = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
        m = store.write_version(
            DATASET,
            name,
            data,
            stage=name,
            code_version="t",
            config={"n": n_prompts, "k": k},
            parents=parents,
        )
        tables[name] = m.version
        parents = [*parents, Parent(name, m.version)]
    store.write_ref(DATASET, "latest", tables)
    return store
