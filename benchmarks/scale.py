"""Scale-out: the same build in the flow's process, on a local Dask cluster of 1 worker and of 2
workers (Prefect's DaskTaskRunner), each into a fresh root. Prints wall times, the speed-up of 2
workers over 1 and the overhead of the task runner (1 Dask worker / in-process), and checks that the
three builds made the same rows (exit status 1 when not). ``--smoke``: the same three builds on 4
prompts x 1 sample of 4 tokens (CI runs it).

    python benchmarks/scale.py --prompts 16 --k 2 --max-new-tokens 16 --shard-size 4

Each build includes loading the engine where it runs (the flow's process, or each worker), as a real
build does; a fresh Dask cluster is started for each Dask build and its start-up is counted.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date

from prefmill.prefect_env import apply_prefect_env

apply_prefect_env()

RECIPE = """\
dataset: scale
seed: 1
shard_size: {shard_size}
prompts:
  sources:
    - kind: arithmetic
      n: {prompts}
      seed: 3
synthesis:
  k: {k}
  max_new_tokens: {max_new_tokens}
"""


def _rows(root: str, summary: object) -> list[tuple]:
    from prefmill.storage import Store

    store = Store(root)
    data = store.read_arrow(store.manifest("scale", "candidates", summary.version("candidates")))  # type: ignore[attr-defined]
    return sorted(zip(*(data.column(c).to_pylist() for c in ("candidate_id", "response")), strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help="tiny: 4 prompts x 1, 4 new tokens, 2 shards")
    args = parser.parse_args()
    if args.smoke:
        args.prompts, args.k, args.max_new_tokens, args.shard_size = 4, 1, 4, 2

    from prefect.testing.utilities import prefect_test_harness

    from prefmill.flows import run_build
    from prefmill.recipe import parse_recipe

    text = RECIPE.format(
        shard_size=args.shard_size, prompts=args.prompts, k=args.k, max_new_tokens=args.max_new_tokens
    )
    work = tempfile.mkdtemp(prefix="prefmill-scale-")
    recipe = parse_recipe(text, base_dir=work)
    shards = -(-args.prompts // args.shard_size)
    print(
        f"prefmill scale benchmark: {args.prompts} prompts x k={args.k}, "
        f"max_new_tokens={args.max_new_tokens}, "
        f"{shards} shards; CPython {platform.python_version()}, {os.cpu_count()} cores, {date.today()}"
    )
    runs = [("in-process", None, 1), ("dask, 1 worker", "dask", 1), ("dask, 2 workers", "dask", 2)]
    seconds: dict[str, float] = {}
    rows: dict[str, list[tuple]] = {}
    with prefect_test_harness(server_startup_timeout=90):
        for label, runner, workers in runs:
            root = os.path.join(work, label.replace(" ", "").replace(",", "-"))
            started = time.perf_counter()
            summary = run_build(recipe, root, task_runner=runner, workers=workers)
            seconds[label] = time.perf_counter() - started
            rows[label] = _rows(root, summary)
            print(f"{label:>16}: {seconds[label]:7.1f} s  ({len(rows[label])} candidates)", flush=True)
    same = rows["in-process"] == rows["dask, 1 worker"] == rows["dask, 2 workers"]
    speedup = seconds["dask, 1 worker"] / seconds["dask, 2 workers"]
    overhead = seconds["dask, 1 worker"] / seconds["in-process"]
    print(f"speed-up, 2 workers over 1: {speedup:.2f}x")
    print(f"overhead, 1 Dask worker / in-process: {overhead:.2f}x")
    print(f"same rows in all three builds: {'PASS' if same else 'FAIL'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
