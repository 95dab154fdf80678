"""Instantiation overhead: prefmill's instantiation runner against the same SQL run bare in DuckDB.

Run::

    .venv/bin/python benchmarks/instantiate.py [--candidates 1000000] [--k 8] [--repeats 3] [--check]

It writes synthetic tables into a store: ``candidates`` (``--candidates`` rows, ``--k`` per prompt,
per-candidate log-probs) and ``judgments`` (one point judgment per candidate on each of two criteria,
scores in steps of 0.1 so ties occur, 0.5% parse errors), then builds ``pairs``, ``points`` and
``lists`` two ways, in the same run, on the same files:

* prefmill: ``duck.session`` over the versions + ``instantiate_with_report`` (parameter checks, the
  ``content_id`` macro, the ``candidate_scores`` view, the output SQL, for pairs the selection SQL,
  drop-reason counts, ``schemas.conform``) — what the instantiation flow runs per output;
* bare: a fresh DuckDB connection, views over ``read_parquet`` of the same files, the same
  ``content_id`` macro, ``scores.sql`` as a view, the same output SQL with the same parameters to
  Arrow; for pairs the same selection SQL over that result, keeping the rows it does not drop.

Every measurement runs in a fresh child process (so that peak RSS, ``ru_maxrss``, belongs to that run
alone), prefmill and bare alternating which goes first; the figure is the median of ``--repeats``.
Row counts of the two sides are checked equal. Target: prefmill / bare <= 1.2 on wall time.
"""

from __future__ import annotations

import argparse
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

DATASET = "bench"
OUTPUTS = ("pairs", "points", "lists")
TARGET = 1.2


# -- data ---------------------------------------------------------------------------------------------------
def make_tables(n: int, k: int, seed: int = 0) -> dict[str, pa.Table]:
    from prefmill.storage.schemas import SCHEMAS

    rng = np.random.default_rng(seed)
    n_prompts = max(1, n // k)
    pids = pa.array([f"p{i:015x}" for i in range(n_prompts)], pa.string())
    user = pa.array([f"Question {i}: explain item {i % 997} briefly." for i in range(n_prompts)], pa.string())
    messages = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n_prompts + 1, dtype=np.int32)),
        pa.StructArray.from_arrays([pa.array(["user"] * n_prompts), user], names=["role", "content"]),
    )
    nulls = pa.nulls(n_prompts, pa.string())
    prompts = pa.Table.from_arrays(
        [pids, messages, pa.array(["bench"] * n_prompts), nulls, nulls, nulls], schema=SCHEMAS["prompts"]
    )
    cand_prompt = pc.take(pids, pa.array(np.arange(n) // k))
    cids = pa.array([f"c{i:015x}" for i in range(n)], pa.string())
    tokens = rng.integers(20, 200, size=n)
    words = np.array(["alpha", "beta", "gamma", "delta", "answer", "is", "the", "so", "thus", "we"])
    pool = " ".join(rng.choice(words, size=4000))
    starts = rng.integers(0, len(pool) - 400, size=n)
    responses = pa.array([pool[s : s + 60 + t] for s, t in zip(starts, tokens, strict=True)], pa.string())
    n_nulls = pa.nulls(n, pa.string())
    candidates = pa.Table.from_arrays(
        [
            cids,
            cand_prompt,
            responses,
            pa.array(["bench:model"] * n),
            pa.array(["online"] * n),
            n_nulls,
            pa.array((np.arange(n) % k).astype(np.int32)),
            pa.array(tokens.astype(np.int64)),
            pa.array(np.full(n, 30, dtype=np.int64)),
            pa.array(["stop"] * n),
            pa.array(-tokens * rng.uniform(0.5, 2.0, size=n)),
            pa.array(np.full(n, 10.0)),
            n_nulls,
        ],
        schema=SCHEMAS["candidates"],
    )
    parts = []
    for criterion in ("helpfulness", "correctness"):
        scores = np.round(rng.uniform(0, 1, size=n), 1)
        bad = rng.uniform(size=n) < 0.005
        parts.append(
            pa.Table.from_arrays(
                [
                    pa.array([f"j{criterion[0]}{i:015x}" for i in range(n)], pa.string()),
                    cand_prompt,
                    cids,
                    n_nulls,
                    pa.array(["bench-judge"] * n),
                    pa.array(["llm"] * n),
                    pa.array(["point"] * n),
                    pa.array([criterion] * n),
                    pa.array(["outcome"] * n),
                    pa.nulls(n, pa.int32()),
                    n_nulls,
                    pa.array(scores, pa.float64(), mask=bad),
                    pa.nulls(n, pa.float64()),
                    n_nulls,
                    n_nulls,
                    pa.array([("no score" if b else None) for b in bad], pa.string()),
                ],
                schema=SCHEMAS["judgments"],
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
def run_prefmill(root: str, versions: dict[str, str], output: str) -> int:
    from prefmill.storage import Store
    from prefmill.storage.duck import session
    from prefmill.tasks.instantiation import instantiate_with_report

    store = Store(root)
    manifests = {t: store.manifest(DATASET, t, v) for t, v in versions.items()}
    con = session(store, DATASET, versions=manifests)
    result = instantiate_with_report(con, output, {})
    return result.table.num_rows


def run_bare(root: str, versions: dict[str, str], output: str) -> int:
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
    return table.num_rows


def child(side: str, root: str, versions_json: str, output: str) -> None:
    versions = json.loads(versions_json)
    started = time.perf_counter()
    rows = (run_prefmill if side == "prefmill" else run_bare)(root, versions, output)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rows": rows, "rss": rss}))


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
    parser.add_argument("--outputs", default=",".join(OUTPUTS), help="comma-separated outputs to time")
    parser.add_argument(
        "--child", nargs=4, metavar=("SIDE", "ROOT", "VERSIONS", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

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
        print("\n" + ("PASS: every target met" if ok else "FAIL: a target was missed"))
        return 0 if ok or not args.check else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
