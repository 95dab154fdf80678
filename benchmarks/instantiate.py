"""Instantiation overhead: prefmill's instantiation runner against the same SQL run bare in DuckDB.

Run::

    .venv/bin/python benchmarks/instantiate.py [--candidates 1000000] [--k 8] [--repeats 3] [--check]
        [--smoke]

It writes synthetic tables into a store: ``candidates`` (``--candidates`` rows, ``--k`` per prompt,
per-candidate log-probs) and ``judgments`` (one point judgment per candidate on each of two criteria,
scores in steps of 0.1 so ties occur, 0.5% parse errors), then builds ``pairs``, ``points`` and
``lists`` two ways, in the same run, on the same files:

* prefmill: ``duck.session`` over the versions + ``instantiate_with_report`` (parameter checks, the
  ``content_id`` macro, the ``candidate_scores`` view, computed once per output, the output SQL, for
  pairs the selection SQL, drop-reason counts, ``schemas.conform``) — what the instantiation flow runs
  per output;
* bare: a fresh DuckDB connection, views over ``read_parquet`` of the same files, the same
  ``content_id`` macro, ``scores.sql`` as a view, the same output SQL with the same parameters to
  Arrow; for pairs the same selection SQL over that result, keeping the rows it does not drop.

Every measurement runs in a fresh child process (so that peak RSS, ``ru_maxrss``, belongs to that run
alone), prefmill and bare alternating which goes first; the figure is the median of ``--repeats``.
The two sides must give the same rows (same count, same ids; the ids are content hashes). Target:
prefmill / bare <= 1.2 on wall time. ``--smoke`` (2,000 candidates, one run of each) checks the rows
and prints the ratios in seconds, without holding them to the target (CI runs it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from _schema_rows import from_schema

DATASET = "bench"
OUTPUTS = ("pairs", "points", "lists")
TARGET = 1.2


# -- data ---------------------------------------------------------------------------------------------------
def make_tables(n: int, k: int, seed: int = 0) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    n_prompts = max(1, n // k)
    pids = pa.array([f"p{i:015x}" for i in range(n_prompts)], pa.string())
    user = pa.array([f"Question {i}: explain item {i % 997} briefly." for i in range(n_prompts)], pa.string())
    messages = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n_prompts + 1, dtype=np.int32)),
        pa.StructArray.from_arrays([pa.array(["user"] * n_prompts), user], names=["role", "content"]),
    )
    prompts = from_schema(
        "prompts",
        n_prompts,
        {"prompt_id": pids, "messages": messages, "source": pa.array(["bench"] * n_prompts)},
    )
    cand_prompt = pc.take(pids, pa.array(np.arange(n) // k))
    cids = pa.array([f"c{i:015x}" for i in range(n)], pa.string())
    tokens = rng.integers(20, 200, size=n)
    words = np.array(["alpha", "beta", "gamma", "delta", "answer", "is", "the", "so", "thus", "we"])
    pool = " ".join(rng.choice(words, size=4000))
    starts = rng.integers(0, len(pool) - 400, size=n)
    responses = pa.array([pool[s : s + 60 + t] for s, t in zip(starts, tokens, strict=True)], pa.string())
    candidates = from_schema(
        "candidates",
        n,
        {
            "candidate_id": cids,
            "prompt_id": cand_prompt,
            "response": responses,
            "generator": pa.array(["bench:model"] * n),
            "origin": pa.array(["online"] * n),
            "sample_index": pa.array((np.arange(n) % k).astype(np.int32)),
            "n_tokens": pa.array(tokens.astype(np.int64)),
            "prompt_tokens": pa.array(np.full(n, 30, dtype=np.int64)),
            "finish_reason": pa.array(["stop"] * n),
            "logprob": pa.array(-tokens * rng.uniform(0.5, 2.0, size=n)),
            "latency_ms": pa.array(np.full(n, 10.0)),
        },
    )
    parts = []
    for criterion in ("helpfulness", "correctness"):
        scores = np.round(rng.uniform(0, 1, size=n), 1)
        bad = rng.uniform(size=n) < 0.005
        parts.append(
            from_schema(
                "judgments",
                n,
                {
                    "judgment_id": pa.array([f"j{criterion[0]}{i:015x}" for i in range(n)], pa.string()),
                    "prompt_id": cand_prompt,
                    "candidate_id": cids,
                    "judge": pa.array(["bench-judge"] * n),
                    "kind": pa.array(["llm"] * n),
                    "mode": pa.array(["point"] * n),
                    "criterion": pa.array([criterion] * n),
                    "granularity": pa.array(["outcome"] * n),
                    "score": pa.array(scores, pa.float64(), mask=bad),
                    "parse_error": pa.array([("no score" if b else None) for b in bad], pa.string()),
                },
            )
        )
    return {"prompts": prompts, "candidates": candidates, "judgments": pa.concat_tables(parts)}


def write_store(root: str, tables: dict[str, pa.Table]) -> dict[str, str]:
    from prefmill.storage import Parent, Store

    store = Store(root)
    versions: dict[str, str] = {}
    for name, table in tables.items():
        m = store.write_version(
            DATASET,
            name,
            table,
            stage="bench",
            code_version="1",
            config={},
            parents=[Parent(t, v) for t, v in versions.items()],
            shard_rows=500_000,
        )
        versions[name] = m.version
    return versions


# -- the two sides (each in a child process) ----------------------------------------------------------------
def row_digest(output: str, table: pa.Table) -> str:
    """sha256 of the table's sorted ids: the ids are content hashes, so equal digests mean the same rows."""
    from prefmill.storage import ID_COLUMNS

    ids = sorted(table.column(ID_COLUMNS[output]).to_pylist())
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def run_prefmill(root: str, versions: dict[str, str], output: str) -> pa.Table:
    from prefmill.storage import Store
    from prefmill.storage.duck import session
    from prefmill.tasks.instantiation import instantiate_with_report

    store = Store(root)
    manifests = {t: store.manifest(DATASET, t, v) for t, v in versions.items()}
    con = session(store, DATASET, versions=manifests)
    return instantiate_with_report(con, output, {}).table


def run_bare(root: str, versions: dict[str, str], output: str) -> pa.Table:
    from prefmill.sql import define_judgment_macros, read_sql
    from prefmill.storage import Store
    from prefmill.tasks.instantiation.run import CONTENT_ID_MACRO, DEFAULT_PARAMS, EMBEDDINGS_SCHEMA

    store = Store(root)
    con = duckdb.connect(":memory:")
    for t, v in versions.items():
        files = ", ".join(f"'{p}'" for p in store.file_paths(store.manifest(DATASET, t, v)))
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet([{files}])")
    con.execute(CONTENT_ID_MACRO)
    define_judgment_macros(con)  # usable_judgments() and swap_pairs(), read by scores.sql and selection.sql
    weights = pa.table({"criterion": pa.array([], pa.string()), "weight": pa.array([], pa.float64())})
    con.register("criterion_weights", weights)
    con.register("candidate_embeddings", EMBEDDINGS_SCHEMA.empty_table())
    con.execute(f"CREATE TEMP VIEW candidate_scores AS {read_sql('scores')}")
    sql = read_sql(output)
    params = {p: DEFAULT_PARAMS[p] for p in duckdb.extract_statements(sql)[0].named_parameters}
    table = con.sql(sql, params=params or None).to_arrow_table()
    if output == "pairs":
        con.register("pairs_unfiltered", table)
        sel = read_sql("selection")
        sparams = {p: DEFAULT_PARAMS[p] for p in duckdb.extract_statements(sel)[0].named_parameters}
        table = con.sql(sel, params=sparams).to_arrow_table()
    if "drop_reason" in table.column_names:  # what selection drops, as a DuckDB user would drop it
        con.register("selected", table)
        table = con.sql(
            "SELECT * EXCLUDE (drop_reason) FROM selected WHERE drop_reason IS NULL"
        ).to_arrow_table()
    return table


def child(side: str, root: str, versions_json: str, output: str) -> None:
    versions = json.loads(versions_json)
    started = time.perf_counter()
    table = (run_prefmill if side == "prefmill" else run_bare)(root, versions, output)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(
        json.dumps(
            {"seconds": seconds, "rows": table.num_rows, "digest": row_digest(output, table), "rss": rss}
        )
    )


def measure(side: str, root: str, versions: dict[str, str], output: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", side, root, json.dumps(versions), output]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} {output} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- main ---------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=8, help="candidates per prompt")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2,000 candidates, 1 repeat; checks rows, not targets"
    )
    parser.add_argument("--outputs", default=",".join(OUTPUTS), help="comma-separated outputs to time")
    parser.add_argument(
        "--child", nargs=4, metavar=("SIDE", "ROOT", "VERSIONS", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.smoke:
        args.candidates, args.k, args.repeats, args.check = 2_000, 4, 1, False

    folder = tempfile.mkdtemp(prefix="prefmill-bench-inst-")
    try:
        started = time.perf_counter()
        tables = make_tables(args.candidates, args.k)
        versions = write_store(folder, tables)
        n_judg = tables["judgments"].num_rows
        del tables
        print(
            f"prefmill instantiation benchmark: {args.candidates:,} candidates x 2 criteria ({n_judg:,} "
            f"judgments, k={args.k}), median of {args.repeats}; CPython {platform.python_version()}, "
            f"duckdb {duckdb.__version__}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}"
        )
        print(f"data written in {time.perf_counter() - started:.1f}s\n")
        rows_out = []
        ok = True
        for output in args.outputs.split(","):
            runs: dict[str, list[dict[str, Any]]] = {"prefmill": [], "bare": []}
            for i in range(args.repeats):
                order = ("prefmill", "bare") if i % 2 == 0 else ("bare", "prefmill")
                for side in order:
                    runs[side].append(measure(side, folder, versions, output))
                    print(f"  {output} {side}: {runs[side][-1]['seconds']:.2f}s", file=sys.stderr, flush=True)
            rows = {s: {r["rows"] for r in rs} for s, rs in runs.items()}
            if rows["prefmill"] != rows["bare"] or len(rows["prefmill"]) != 1:
                raise SystemExit(f"{output}: row counts differ: {rows}")
            digests = {s: {r["digest"] for r in rs} for s, rs in runs.items()}
            if digests["prefmill"] != digests["bare"] or len(digests["prefmill"]) != 1:
                raise SystemExit(f"{output}: prefmill and bare made different rows (ids differ)")
            med = {s: statistics.median(r["seconds"] for r in rs) for s, rs in runs.items()}
            rss = {s: max(r["rss"] for r in rs) for s, rs in runs.items()}
            ratio = med["prefmill"] / med["bare"]
            passed = ratio <= TARGET
            ok &= passed
            rows_out.append((output, rows["bare"].pop(), med, rss, ratio, passed))
        head = (
            "output",
            "rows",
            "prefmill s",
            "bare s",
            "prefmill/bare",
            "RSS prefmill",
            "RSS bare",
            "target",
            "",
        )
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for output, n, med, rss, ratio, passed in rows_out:
            cells = [
                output,
                f"{n:,}",
                f"{med['prefmill']:.2f}",
                f"{med['bare']:.2f}",
                f"{ratio:.3f}",
                f"{rss['prefmill'] / 2**20:.0f} MiB",
                f"{rss['bare'] / 2**20:.0f} MiB",
                f"<= {TARGET}",
                "PASS" if passed else "FAIL",
            ]
            print("| " + " | ".join(cells) + " |")
        if args.smoke:
            print("\nsmoke: same rows on both sides; ratios at tiny sizes are not held to the target")
        else:
            print("\n" + ("PASS: every target met" if ok else "FAIL: a target was missed"))
        return 0 if ok or not args.check else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
