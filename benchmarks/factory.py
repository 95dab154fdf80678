"""The factory's own cost per row: a whole build with the ``scripted`` engine (it answers at once),
so what is measured is prefmill itself: ids, seeds, requests, schema checks, Parquet writes,
manifests, Prefect task runs, the heuristic judge and the instantiation SQL.

Prints, per stage, rows and rows/s of the build (``TableResult.seconds``: the stage's own time), then
the same candidate rows made by the simplest correct script a user would write instead (read the
prompts, one request per prompt and sample with the same seeds, the engine, one ``pa.table``, one
``pq.write_table``), checked to give the same rows, with the ratio; then where the synthesis time
of those rows goes (ids, seeds, requests, the engine, the schema check, the write). ``--smoke``: 2,000
prompts x k=2 (CI runs it).

    python benchmarks/factory.py --prompts 100000 --k 4 --shard-size 10000

Exit status 1 when the rows differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from prefmill.prefect_env import apply_prefect_env

apply_prefect_env()
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the stage lines below, not Prefect's

RECIPE = """\
dataset: factory
seed: 7
shard_size: {shard_size}
prompts:
  sources:
    - kind: file
      path: prompts.jsonl
synthesis:
  engine: scripted:echo
  k: {k}
  temperature: [0.7, 1.0]
  top_p: 1.0
  max_new_tokens: 16
evaluation:
  judges: [heuristic]
instantiation:
  outputs: [pairs, points, lists]
"""
SEED = 7


def write_prompts(path: str, n: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps({"prompt": f"Question {i}: explain step {i % 97} of process {i // 97}."}) + "\n"
            )


def baseline(prompts_path: str, out: str, k: int, engine: Any) -> tuple[Any, dict[str, float]]:
    """What a user writes instead: prompts -> one request per (prompt, sample) -> Parquet. The ids
    and seeds are prefmill's pure functions (so the rows can be compared), timed step by step."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from prefmill.engines.base import GenerationRequest, SamplingParams
    from prefmill.ids import canonical_json, content_id, seed_for

    steps: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = fn()
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - started
        return value

    prompts = timed("read prompts", lambda: pq.read_table(prompts_path, columns=["prompt_id", "messages"]))
    pids = prompts.column("prompt_id").to_pylist()
    messages = prompts.column("messages").to_pylist()
    temps = (0.7, 1.0)
    keys = [(pid, i) for pid in pids for i in range(k)]
    seeds = timed("seeds", lambda: [seed_for(SEED, pid, i) for pid, i in keys])
    samplings = [SamplingParams(temps[i % 2], 1.0, 16) for i in range(k)]
    texts = timed(
        "sampling json",
        lambda: [
            canonical_json({"temperature": temps[i % 2], "top_p": 1.0, "max_new_tokens": 16, "seed": s})
            for (_, i), s in zip(keys, seeds, strict=True)
        ],
    )
    ids = timed(
        "ids",
        lambda: [content_id([pid, engine.name, t, i]) for (pid, i), t in zip(keys, texts, strict=True)],
    )
    requests = timed(
        "requests",
        lambda: [
            GenerationRequest(messages[n // k], samplings[i], s)
            for n, ((_, i), s) in enumerate(zip(keys, seeds, strict=True))
        ],
    )
    generations = timed("engine", lambda: engine.generate(requests))
    table = timed(
        "arrow table",
        lambda: pa.table(
            {
                "candidate_id": ids,
                "prompt_id": [pid for pid, _ in keys],
                "response": [g.text for g in generations],
                "sample_index": pa.array([i for _, i in keys], pa.int32()),
                "sampling": texts,
                "n_tokens": [g.n_tokens for g in generations],
            }
        ),
    )
    timed("write parquet", lambda: pq.write_table(table, out))
    return table, steps


def schema_check_seconds(candidates: Any) -> float:
    """The candidates schema check (``conform``) over the build's rows."""
    from prefmill.storage.schemas import conform

    started = time.perf_counter()
    conform("candidates", candidates, where="benchmark")
    return time.perf_counter() - started


def stage_cpu() -> dict[str, float]:
    """CPU seconds (``time.process_time``: this process, all threads) of each stage of the build, by
    stage name: ``run_stage`` wrapped where the flows call it."""
    from prefmill.flows import instantiation, stage

    spent: dict[str, float] = {}
    original = stage.run_stage

    def timed(root: str, dataset: str, specs: Any) -> Any:
        started = time.process_time()
        try:
            return original(root, dataset, specs)
        finally:
            name = specs[0].stage
            spent[name] = spent.get(name, 0.0) + time.process_time() - started

    stage.run_stage = timed  # type: ignore[assignment]
    instantiation.run_stage = timed  # type: ignore[attr-defined]
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--smoke", action="store_true", help="tiny: 2,000 prompts x k=2, 2 shards")
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.k, args.shard_size = 2_000, 2, 1_000

    from prefect.testing.utilities import prefect_test_harness

    from prefmill.engines.registry import get_engine
    from prefmill.flows import run_build
    from prefmill.recipe import parse_recipe
    from prefmill.storage import Store

    work = tempfile.mkdtemp(prefix="prefmill-factory-")
    write_prompts(os.path.join(work, "prompts.jsonl"), args.prompts)
    text = RECIPE.format(shard_size=args.shard_size, k=args.k)
    recipe = parse_recipe(text, base_dir=work)
    print(
        f"prefmill factory benchmark: {args.prompts:,} prompts x k={args.k} (scripted engine), "
        f"shard_size {args.shard_size:,}; CPython {platform.python_version()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}, {date.today()}"
    )
    root = os.path.join(work, "data")
    cpu = stage_cpu()
    with prefect_test_harness(server_startup_timeout=300):  # a loaded machine starts it slowly
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = run_build(recipe, root)
        wall, cpu_all = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        f"build: {wall:.1f} s wall, {cpu_all:.1f} s CPU (Prefect's start-up excluded); load {os.getloadavg()}"
    )
    print("  per table: rows in the stage's wall seconds; the stage's CPU seconds (this process)")
    for t in summary.tables:
        rate = t.rows / t.seconds if t.seconds else float("nan")
        line = f"  {t.table:>17}: {t.rows:>9,} rows in {t.seconds:6.2f} s = {rate:>10,.0f} rows/s"
        if (spent := cpu.get(t.stage)) is not None:  # the prompts stage does not run on run_stage
            line += f"; CPU {spent:6.2f} s = {t.rows / max(spent, 1e-9):>10,.0f} rows/s"
        print(line)

    store = Store(root)
    cands = store.read_arrow(store.manifest("factory", "candidates", summary.version("candidates")))
    prompts_m = store.manifest("factory", "prompts", summary.version("prompts"))
    prompts_file = store.file_paths(prompts_m)[0]
    engine = get_engine("scripted:echo", batch_size=8)
    started = time.perf_counter()
    base, steps = baseline(prompts_file, os.path.join(work, "baseline.parquet"), args.k, engine)
    base_seconds = time.perf_counter() - started
    build_rows = sorted(
        zip(*(cands.column(c).to_pylist() for c in ("candidate_id", "prompt_id", "response")), strict=True)
    )
    base_rows = sorted(
        zip(*(base.column(c).to_pylist() for c in ("candidate_id", "prompt_id", "response")), strict=True)
    )
    same = build_rows == base_rows
    synth = next(t for t in summary.tables if t.table == "candidates")
    print(
        f"baseline script: {base.num_rows:,} candidate rows in {base_seconds:.2f} s = "
        f"{base.num_rows / base_seconds:,.0f} rows/s; prefmill synthesis {synth.rows / synth.seconds:,.0f} "
        f"rows/s: ratio (prefmill time / baseline time) {synth.seconds / base_seconds:.2f}"
    )
    steps["schema check (conform)"] = schema_check_seconds(cands)
    print("where the candidate rows' time goes (baseline steps, and prefmill's schema check):")
    for name, seconds in steps.items():
        print(f"  {name:>24}: {seconds:6.3f} s = {base.num_rows / max(seconds, 1e-9):>12,.0f} rows/s")
    print(f"same candidate rows (ids, prompts, responses): {'PASS' if same else 'FAIL'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
