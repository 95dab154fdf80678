"""Instantiation against the shortest correct DuckDB query for each output, at 1M and 10M candidates.

Run::

    .venv/bin/python benchmarks/instantiate.py [--candidates 1000000,10000000] [--k 8] [--repeats 1]
        [--outputs pairs,points,lists] [--data DIR] [--check] [--smoke]

It writes synthetic tables into a store: ``candidates`` (``--candidates`` rows, ``--k`` per prompt,
per-candidate log-probs) and ``judgments`` (one point judgment per candidate on each of two criteria,
scores in steps of 0.1 so ties occur, 0.5% parse errors), then builds each output two ways on the
same files:

* prefmill: ``duck.session`` over the versions + ``instantiate_with_report`` (parameter checks, the
  ``content_id`` macro, the scores computed once, the output SQL, for pairs the selection SQL,
  drop-reason counts, ``schemas.conform``): what the instantiation flow runs per output, with the
  flow's connection settings (``storage.duck.configure``: memory limit, temp directory);
* baseline: the simplest correct query a DuckDB user would write for that output on this data, by
  hand, here in this file (``BASELINES``): pairs = one GROUP BY over the judgments with ``min_by``
  for the best and the worst candidate, then three joins for the texts; points = the scores joined
  with the texts; lists = one GROUP BY with ordered ``list()`` aggregates, ranks and advantages from
  the lists. A plain DuckDB connection, no settings.

Every measurement runs in a fresh child process (so that peak RSS, ``ru_maxrss``, belongs to that side
alone), the two sides alternating which goes first; wall and CPU seconds are medians of ``--repeats``.
The two sides must give the same rows: the ids (content hashes) and the columns a trainer reads
(chosen / rejected ids and texts, scores, margin, soft label; reward, label; candidate ids, ranks,
advantages, floats rounded to 9 decimals) are hashed on both sides and compared. Target: prefmill /
baseline <= 1.5 on wall time. ``--smoke`` (2,000 candidates, one run of each) checks the rows and
prints the ratios without holding them to the target (CI runs it).
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

from support.schema_rows import from_schema

DATASET = "bench"
OUTPUTS = ("pairs", "points", "lists")
TARGET = 1.5


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


# -- the baselines: what a DuckDB user would write for each output on this data -----------------------------
#: The scores: the mean usable point judgment per (prompt, candidate, criterion).
_SCORES = """
    SELECT prompt_id, candidate_id, criterion, round(avg(score), 12) AS score
    FROM judgments
    WHERE granularity = 'outcome' AND mode = 'point' AND parse_error IS NULL AND score IS NOT NULL
    GROUP BY prompt_id, candidate_id, criterion
"""

BASELINES = {
    # best vs worst per (prompt, criterion), ties to the smaller id: one GROUP BY, then three joins
    "pairs": f"""
WITH s AS ({_SCORES}),
g AS (
    SELECT prompt_id, criterion,
        min_by(candidate_id, (-score, candidate_id)) AS chosen_id, max(score) AS chosen_score,
        min_by(candidate_id, (score, candidate_id)) AS rejected_id, min(score) AS rejected_score
    FROM s GROUP BY prompt_id, criterion HAVING max(score) > min(score)
)
SELECT
    substr(sha256(to_json([g.chosen_id, g.rejected_id, g.criterion, 'best_vs_worst'])::VARCHAR), 1, 16)
        AS pair_id,
    g.prompt_id, p.messages[-1].content AS prompt, c.response AS chosen, r.response AS rejected,
    g.chosen_id, g.rejected_id, g.chosen_score, g.rejected_score,
    g.chosen_score - g.rejected_score AS margin,
    1.0 / (1.0 + exp(-(g.chosen_score - g.rejected_score))) AS soft_label, g.criterion
FROM g
JOIN candidates c ON c.candidate_id = g.chosen_id
JOIN candidates r ON r.candidate_id = g.rejected_id
JOIN prompts p ON p.prompt_id = g.prompt_id
""",
    # every score with its text and a threshold label
    "points": f"""
WITH s AS ({_SCORES})
SELECT substr(sha256(to_json([s.candidate_id, s.criterion])::VARCHAR), 1, 16) AS point_id,
    s.prompt_id, p.messages[-1].content AS prompt, c.response AS completion, s.candidate_id,
    s.score AS reward, s.score >= 0.5 AS label, s.criterion
FROM s
JOIN candidates c ON c.candidate_id = s.candidate_id
JOIN prompts p ON p.prompt_id = s.prompt_id
""",
    # one ranked list per (prompt, criterion) with >= 2 candidates
    "lists": f"""
WITH s AS ({_SCORES}),
g AS (
    SELECT s.prompt_id, s.criterion,
        list(s.candidate_id ORDER BY s.score DESC, s.candidate_id) AS candidate_ids,
        list(c.response ORDER BY s.score DESC, s.candidate_id) AS completions,
        list(s.score ORDER BY s.score DESC, s.candidate_id) AS scores
    FROM s JOIN candidates c ON c.candidate_id = s.candidate_id
    GROUP BY s.prompt_id, s.criterion HAVING count(*) >= 2
)
SELECT
    substr(sha256(to_json(list_concat([g.prompt_id, g.criterion], g.candidate_ids))::VARCHAR), 1, 16)
        AS list_id,
    g.prompt_id, p.messages[-1].content AS prompt, candidate_ids, completions, scores,
    list_transform(scores, lambda x: list_position(scores, x)) AS ranks,
    list_transform(scores, lambda x: CASE WHEN list_min(scores) = list_max(scores) THEN 0.0
        ELSE (x - list_avg(scores)) / (list_stddev_pop(scores) + 1e-6) END) AS advantages,
    g.criterion
FROM g JOIN prompts p ON p.prompt_id = g.prompt_id
""",
}

#: What must be equal on both sides, per output: hashed row by row, summed (order-free); floats to 9
#: decimals (the two sides sum in different orders).
DIGESTS = {
    "pairs": "pair_id, prompt_id, prompt, chosen, rejected, chosen_id, rejected_id, round(chosen_score, 9), "
    "round(rejected_score, 9), round(margin, 9), round(soft_label, 9), criterion",
    "points": "point_id, prompt_id, prompt, completion, candidate_id, round(reward, 9), label, criterion",
    "lists": "list_id, prompt_id, prompt, candidate_ids, completions, "
    "list_transform(scores, lambda x: round(x, 9)), ranks::BIGINT[], "
    "list_transform(advantages, lambda x: round(x, 9)), criterion",
}


def digest(path: str, output: str) -> tuple[int, int]:
    """(rows, order-free hash of the compared columns) of an output file."""
    con = duckdb.connect(":memory:")
    rows, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash({DIGESTS[output]})::HUGEINT), 0) FROM read_parquet('{path}')"
    ).fetchall()[0]
    return int(rows), int(total)


# -- the two sides (each in a child process) ----------------------------------------------------------------
def run_prefmill(root: str, versions: dict[str, str], output: str, out: str) -> None:
    """What the instantiation flow does for one output (flows/instantiation.py ``build_output`` and the
    shard writer): session, connection settings, SQL, selection, batches to Parquet with their stats."""
    from prefmill.storage import Store
    from prefmill.storage.duck import configure, scratch_dir, session
    from prefmill.storage.writer import _write_parquet
    from prefmill.tasks.instantiation import instantiate_stream

    store = Store(root)
    manifests = {t: store.manifest(DATASET, t, v) for t, v in versions.items()}
    scratch = scratch_dir(store, DATASET)
    con = configure(session(store, DATASET, versions=manifests), temp_directory=scratch)
    stream = instantiate_stream(con, output, {})
    with open(out, "wb") as sink:
        _write_parquet(output, stream.batches(), sink, "bench")
    stream.stats.result(stream.removed)
    con.close()


def run_baseline(root: str, versions: dict[str, str], output: str, out: str) -> None:
    from prefmill.storage import Store

    store = Store(root)
    con = duckdb.connect(":memory:")
    for t, v in versions.items():
        files = ", ".join(f"'{p}'" for p in store.file_paths(store.manifest(DATASET, t, v)))
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet([{files}])")
    con.execute(f"COPY ({BASELINES[output]}) TO '{out}' (FORMAT parquet)")
    con.close()


def child(side: str, root: str, versions_json: str, output: str, out: str) -> None:
    versions = json.loads(versions_json)
    started, cpu0 = time.perf_counter(), time.process_time()
    (run_prefmill if side == "prefmill" else run_baseline)(root, versions, output, out)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss": rss}))


def measure(side: str, root: str, versions: dict[str, str], output: str) -> dict[str, Any]:
    out = os.path.join(root, f"out-{side}-{output}.parquet")
    cmd = [sys.executable, __file__, "--child", side, root, json.dumps(versions), output, out]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} {output} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows"], result["digest"] = digest(out, output)
    os.remove(out)
    return result


# -- main ---------------------------------------------------------------------------------------------------
def dataset(folder: str, n: int, k: int) -> dict[str, str]:
    """The store of ``n`` candidates under ``folder`` (written once: a second run reuses it)."""
    root = os.path.join(folder, f"n{n}-k{k}")
    marker = os.path.join(root, "versions.json")
    if os.path.exists(marker):
        with open(marker) as f:
            return json.load(f)
    started = time.perf_counter()
    tables = make_tables(n, k)
    versions = write_store(root, tables)
    with open(marker, "w") as f:
        json.dump(versions, f)
    print(f"data: {n:,} candidates written in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return versions


def run_size(folder: str, n: int, args: argparse.Namespace) -> tuple[list[tuple[Any, ...]], bool]:
    versions = dataset(folder, n, args.k)
    root = os.path.join(folder, f"n{n}-k{args.k}")
    rows_out, ok = [], True
    for output in args.outputs.split(","):
        runs: dict[str, list[dict[str, Any]]] = {"prefmill": [], "baseline": []}
        for i in range(args.repeats):
            order = ("prefmill", "baseline") if i % 2 == 0 else ("baseline", "prefmill")
            for side in order:
                runs[side].append(measure(side, root, versions, output))
                print(
                    f"  {n:,} {output} {side}: {runs[side][-1]['seconds']:.2f}s", file=sys.stderr, flush=True
                )
        made = {s: {(r["rows"], r["digest"]) for r in rs} for s, rs in runs.items()}
        if made["prefmill"] != made["baseline"] or len(made["prefmill"]) != 1:
            raise SystemExit(f"{output} at {n:,}: prefmill and the baseline made different rows: {made}")
        med = {s: statistics.median(r["seconds"] for r in rs) for s, rs in runs.items()}
        cpu = {s: statistics.median(r["cpu"] for r in rs) for s, rs in runs.items()}
        rss = {s: max(r["rss"] for r in rs) for s, rs in runs.items()}
        ratio = med["prefmill"] / med["baseline"]
        ok &= ratio <= TARGET
        rows_out.append((n, output, made["baseline"].pop()[0], med, cpu, rss, ratio, ratio <= TARGET))
    return rows_out, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default="1000000,10000000", help="comma-separated sizes")
    parser.add_argument("--k", type=int, default=8, help="candidates per prompt")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 2,000 candidates, 1 repeat; checks rows, not targets"
    )
    parser.add_argument("--outputs", default=",".join(OUTPUTS), help="comma-separated outputs to time")
    parser.add_argument("--data", help="folder to keep the generated stores in (reused by the next run)")
    parser.add_argument(
        "--child", nargs=5, metavar=("SIDE", "ROOT", "VERSIONS", "OUTPUT", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.smoke:
        args.candidates, args.k, args.repeats, args.check = "2000", 4, 1, False
    sizes = [int(n) for n in str(args.candidates).split(",")]
    folder = args.data or tempfile.mkdtemp(prefix="prefmill-bench-inst-")
    try:
        print(
            f"prefmill instantiation benchmark: {', '.join(f'{n:,}' for n in sizes)} candidates x 2 criteria "
            f"(k={args.k}), median of {args.repeats}; CPython {platform.python_version()}, duckdb "
            f"{duckdb.__version__}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}, load "
            f"{os.getloadavg()[0]:.1f}\n"
        )
        rows_out, ok = [], True
        for n in sizes:
            more, passed = run_size(folder, n, args)
            rows_out += more
            ok &= passed
        head = (
            "candidates",
            "output",
            "rows",
            "prefmill s",
            "baseline s",
            "prefmill/baseline",
            "CPU s prefmill",
            "CPU s baseline",
            "RSS prefmill",
            "RSS baseline",
            "target",
            "",
        )
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for n, output, count, med, cpu, rss, ratio, passed in rows_out:
            cells = [
                f"{n:,}",
                output,
                f"{count:,}",
                f"{med['prefmill']:.2f}",
                f"{med['baseline']:.2f}",
                f"{ratio:.3f}",
                f"{cpu['prefmill']:.2f}",
                f"{cpu['baseline']:.2f}",
                f"{rss['prefmill'] / 2**20:.0f} MiB",
                f"{rss['baseline'] / 2**20:.0f} MiB",
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
        if not args.data:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
