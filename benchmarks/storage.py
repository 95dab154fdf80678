"""Storage overhead: the versioned table store against bare Parquet and DuckDB on the same data.

Run::

    .venv/bin/python benchmarks/storage.py [--rows 1000000] [--shards 4] [--repeats 6] [--smoke]

It builds a synthetic ``candidates`` table (about 500-character responses), then times, in the same
run and on the same data split the same way into the same number of files:

* write: ``Store.write_version`` (schema check, sharded atomic writes, manifest publish) against
  ``pyarrow.parquet.write_table`` of each slice;
* read: ``Store.read_arrow`` of the version against ``pyarrow.parquet.read_table`` of the files;
* query: a DuckDB aggregate through ``duck.session`` against the same SQL over ``read_parquet`` of the
  bare files.

Each measurement is the median of ``--repeats`` runs, store and bare alternating which goes first,
each after ``os.sync()`` and a short idle pause. The ratios are store / bare on wall-clock time;
targets: write <= 1.15, query <= 1.10 (read is informational). The CPU-time ratio (this process, all
threads) is printed beside it as a cross-check that is less sensitive to other load on the machine.
Exit status is 0, or 1 with ``--check`` when a target is missed. ``--smoke`` runs in seconds on tiny
sizes (CI runs it): the same steps and checks, the ratios printed but not held to the targets.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefmill.storage import Manifest, Store, duck
from support.schema_rows import from_schema

DATASET = "bench"
TABLE = "candidates"
SAMPLES_PER_PROMPT = 4
TARGETS: dict[str, float | None] = {"write": 1.15, "read": None, "query": 1.10}
QUERY = (
    "SELECT prompt_id, avg(length(response)) AS avg_len, count(*) AS n FROM {source} "
    "GROUP BY prompt_id ORDER BY avg_len DESC, prompt_id LIMIT 10"
)


# -- data -------------------------------------------------------------------------------------------------
def _text_pool(rng: np.random.Generator, size: int) -> str:
    """About ``size`` characters of word-like text: random words from a small random vocabulary."""
    letters = np.frombuffer(b"etaoinshrdlucmfwypvbgkjqxz", dtype=np.uint8)
    weights = np.linspace(2.0, 0.1, len(letters))
    weights /= weights.sum()
    vocab = []
    for length in rng.integers(1, 11, size=4000):
        vocab.append(rng.choice(letters, size=int(length), p=weights).tobytes().decode())
    words = rng.choice(np.array(vocab, dtype=object), size=size // 5)
    text = " ".join(words)
    return (text + ". ") * (1 + size // max(len(text), 1))


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    return pa.array([f"{x:016x}" for x in rng.integers(0, 2**63, size=n, dtype=np.int64)], pa.string())


def _pick(rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None) -> pa.Array:
    idx = rng.choice(len(values), size=n, p=p)
    return pc.take(pa.array(values, pa.string()), pa.array(idx))


def make_candidates(n: int, seed: int = 0) -> pa.Table:
    """``n`` candidate rows shaped like a real synthesis output (4 samples per prompt, ~1% errors)."""
    rng = np.random.default_rng(seed)
    pool = _text_pool(rng, 4_000_000)
    lengths = rng.integers(350, 651, size=n)
    starts = rng.integers(0, len(pool) - 651, size=n)
    body = "".join(pool[s : s + k] for s, k in zip(starts.tolist(), lengths.tolist(), strict=True))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    response = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(body.encode("ascii")))
    del body

    failed = rng.random(n) < 0.01
    prompts = _hex_ids(rng, max(n // SAMPLES_PER_PROMPT, 1))
    prompt_index = np.arange(n) // SAMPLES_PER_PROMPT
    n_tokens = (lengths // 4).astype(np.int64)
    return from_schema(  # what a synthesis task hands over: the declared schema
        TABLE,
        n,
        {
            "candidate_id": _hex_ids(rng, n),
            "prompt_id": pc.take(prompts, pa.array(np.minimum(prompt_index, len(prompts) - 1))),
            "response": pc.if_else(pa.array(failed), pa.scalar(None, pa.string()), response),
            "generator": pa.array(["vllm:Qwen2.5-7B-Instruct"] * n, pa.string()),
            "origin": pa.array(["online"] * n, pa.string()),
            "sampling": _pick(
                rng,
                ['{"temperature":0.7,"top_p":0.95}', '{"temperature":1.0,"top_p":1.0}'],
                n,
            ),
            "sample_index": pa.array((np.arange(n) % SAMPLES_PER_PROMPT).astype(np.int32)),
            "n_tokens": pa.array(np.where(failed, 0, n_tokens)),
            "prompt_tokens": pa.array(rng.integers(40, 400, size=n)),
            "finish_reason": pc.if_else(
                pa.array(failed), "error", _pick(rng, ["stop", "length"], n, [0.9, 0.1])
            ),
            "logprob": pa.array(np.where(failed, np.nan, -rng.gamma(2.0, 40.0, size=n)), from_pandas=True),
            "latency_ms": pa.array(rng.gamma(3.0, 300.0, size=n)),
            "error": pc.if_else(
                pa.array(failed), "TimeoutError: request timed out", pa.scalar(None, pa.string())
            ),
        },
    )


# -- the two sides of each measurement --------------------------------------------------------------------
def store_write(store: Store, data: pa.Table, shard_rows: int, run: int) -> Manifest:
    return store.write_version(
        DATASET,
        TABLE,
        data,
        stage="synthesize",
        code_version="bench",
        config={"run": run},  # a new version each time: the store never rewrites an existing one
        shard_rows=shard_rows,
    )


def bare_write(folder: Path, data: pa.Table, shard_rows: int) -> list[str]:
    folder.mkdir(parents=True)
    paths = []
    for i, start in enumerate(range(0, data.num_rows, shard_rows)):
        path = str(folder / f"part-{i:05d}.parquet")
        pq.write_table(data.slice(start, shard_rows), path)
        paths.append(path)
    return paths


def store_read(store: Store, version: str) -> pa.Table:
    return store.read_arrow(store.manifest(DATASET, TABLE, version))


def bare_read(paths: list[str]) -> pa.Table:
    return pq.read_table(paths)


def store_query(store: Store, version: str) -> pa.Table:
    con = duck.session(store, DATASET, versions={TABLE: store.manifest(DATASET, TABLE, version)})
    try:
        return duck.query(con, QUERY.format(source=TABLE))
    finally:
        con.close()


def bare_query(paths: list[str]) -> pa.Table:
    con = duckdb.connect()
    try:
        files = ", ".join(f"'{p}'" for p in paths)
        return duck.to_arrow(con.sql(QUERY.format(source=f"read_parquet([{files}])")))
    finally:
        con.close()


# -- timing -----------------------------------------------------------------------------------------------
Sample = tuple[float, float]  # (wall seconds, CPU seconds of this process, all threads)


def _timed(fn: Callable[[], Any], settle: float) -> Sample:
    gc.collect()
    # Flush the previous run's dirty pages and let the disk settle (deletes on a `discard` mount keep
    # it busy for a while), so no run pays for the one before it.
    os.sync()
    time.sleep(settle)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(
    name: str,
    repeats: int,
    store_fn: Callable[[int], Any],
    bare_fn: Callable[[int], Any],
    *,
    settle: float,
    after: Callable[[str, int], None] | None = None,
) -> dict[str, list[Sample]]:
    """Run both sides ``repeats`` times, alternating which goes first; ``after(side, run)`` runs
    untimed after each side (to delete what a write made)."""
    samples: dict[str, list[Sample]] = {"store": [], "bare": []}
    for r in range(repeats):
        order = [("store", store_fn), ("bare", bare_fn)]
        if r % 2:
            order.reverse()
        for side, fn in order:
            samples[side].append(_timed(lambda fn=fn, r=r: fn(r), settle))
            if after is not None:
                after(side, r)
        (sw, sc), (bw, bc) = samples["store"][-1], samples["bare"][-1]
        print(
            f"  {name} run {r + 1}/{repeats}: store {sw:.3f}s (cpu {sc:.3f}s)  bare {bw:.3f}s (cpu {bc:.3f}s)"
        )
    return samples


def report(results: dict[str, dict[str, list[Sample]]]) -> bool:
    """Print the results table; True when every target is met (on the median wall-clock ratio)."""
    header = ["step", "store s", "bare s", "store/bare", "cpu store/bare", "target", "result"]
    widths = [6, 8, 8, 10, 14, 7, 6]
    cells = [
        h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True))
    ]
    print("| " + " | ".join(cells) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    ok = True
    for step, samples in results.items():
        s = statistics.median(w for w, _ in samples["store"])
        b = statistics.median(w for w, _ in samples["bare"])
        cpu = statistics.median(c for _, c in samples["store"]) / statistics.median(
            c for _, c in samples["bare"]
        )
        target = TARGETS[step]
        if target is None:
            verdict, target_text = "info", "-"
        else:
            verdict, target_text = ("PASS" if s / b <= target else "FAIL"), f"<= {target:.2f}"
            ok &= s / b <= target
        row = [
            step.ljust(6),
            f"{s:8.3f}",
            f"{b:8.3f}",
            f"{s / b:10.3f}",
            f"{cpu:14.3f}",
            target_text.rjust(7),
            verdict.ljust(6),
        ]
        print("| " + " | ".join(row) + " |")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the candidates table")
    parser.add_argument("--shards", type=int, default=4, help="files per version (both sides)")
    parser.add_argument(
        "--repeats", type=int, default=6, help="runs per measurement (even: each side goes first as often)"
    )
    parser.add_argument(
        "--dir", default=None, help="parent of the fresh temporary folder (default: system tmp)"
    )
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds of idle disk before each timed run"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="seconds: 4,000 rows, 2 shards, 2 repeats, no pause; checks the answers, not the targets",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.shards, args.repeats, args.settle, args.check = 4_000, 2, 2, 0.0, False

    print(
        f"prefmill storage benchmark: {args.rows:,} rows, {args.shards} shards, median of {args.repeats}; "
        f"{platform.python_implementation()} {platform.python_version()}, pyarrow {pa.__version__}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d}",
        flush=True,
    )
    t0 = time.perf_counter()
    data = make_candidates(args.rows)
    avg_len = pc.mean(pc.utf8_length(data.column("response"))).as_py()
    print(
        f"data: {data.num_rows:,} rows, {data.nbytes / 2**20:,.0f} MiB in memory, mean response "
        f"{avg_len:.0f} chars (built in {time.perf_counter() - t0:.1f}s)",
        flush=True,
    )
    shard_rows = -(-args.rows // args.shards)
    work = Path(tempfile.mkdtemp(prefix="prefmill-bench-", dir=args.dir))
    settle = args.settle
    try:
        store = Store(work / "store")
        written: dict[int, Manifest] = {}

        def do_store_write(r: int) -> None:
            written[r] = store_write(store, data, shard_rows, r)

        def do_bare_write(r: int) -> None:
            bare_write(work / "bare" / f"run-{r}", data, shard_rows)

        def drop(side: str, r: int) -> None:  # each write starts on an equally empty disk
            if side == "store":
                shutil.rmtree(store.version_path(DATASET, TABLE, written[r].version))
            else:
                shutil.rmtree(work / "bare" / f"run-{r}")

        print("write", flush=True)
        results = {
            "write": measure("write", args.repeats, do_store_write, do_bare_write, settle=settle, after=drop)
        }

        # one copy of each for the read and query runs (not timed)
        version = store_write(store, data, shard_rows, -1).version
        paths = bare_write(work / "bare" / "final", data, shard_rows)
        m = store.manifest(DATASET, TABLE, version)
        store_bytes = sum(f.bytes for f in m.files)
        bare_bytes = sum(os.path.getsize(p) for p in paths)
        print(
            f"files: store {len(m.files)} x, {store_bytes / 2**20:,.0f} MiB; "
            f"bare {len(paths)} x, {bare_bytes / 2**20:,.0f} MiB",
            flush=True,
        )
        # the same rows and the same answer come back either way
        assert store_read(store, version).equals(bare_read(paths)), "store and bare read differ"
        assert store_query(store, version).equals(bare_query(paths)), "store and bare query differ"

        print("read", flush=True)
        results["read"] = measure(
            "read",
            args.repeats,
            lambda r: store_read(store, version),
            lambda r: bare_read(paths),
            settle=settle,
        )
        print("query", flush=True)
        results["query"] = measure(
            "query",
            args.repeats,
            lambda r: store_query(store, version),
            lambda r: bare_query(paths),
            settle=settle,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    ok = report(results)
    print()
    if args.smoke:
        print("smoke: answers checked equal; ratios at tiny sizes are not held to the targets")
    else:
        print("PASS: every target met" if ok else "FAIL: a target was missed")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if not ok and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
