"""An unchanged rerun of `prefmill build`: the wall time of the command, which finds every version
published before Prefect starts (``flows.fastpath``), against the same rerun through the flows (the
Python API ``run_build`` in a fresh process, which starts a temporary Prefect API and runs every
stage as cached: what `prefmill build` did before). Checks both report the same versions and that
the command printed no 'starting Prefect'. The first build uses the ``scripted`` engine (no model).

    python benchmarks/rerun.py --runs 3

``--smoke``: one rerun of the command alone, its versions checked against the ref the first build
wrote (CI runs it). Exit status 1 when the versions differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date

RECIPE = """\
dataset: rerun
seed: 3
shard_size: 8
prompts:
  sources:
    - kind: arithmetic
      n: 16
      seed: 1
synthesis:
  engine: scripted:echo
  k: 4
evaluation:
  judges: [arithmetic, heuristic]
instantiation:
  outputs: [pairs, points, lists]
"""

VIA_FLOWS = """\
import json, sys
from prefmill.flows import run_build
from prefmill.recipe import load_recipe
summary = run_build(load_recipe(sys.argv[1]), sys.argv[2])
print(json.dumps({t.table: t.version for t in summary.tables}))
"""


def _env(work: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PREFECT_HOME=os.path.join(work, "prefect-home"), NO_COLOR="1", TERM="dumb")
    env.update(PREFECT_LOGGING_LEVEL="CRITICAL", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env.pop("PREFECT_API_URL", None)
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="reruns of each kind (the median is shown)")
    parser.add_argument("--smoke", action="store_true", help="one rerun of the command, no flows rerun")
    args = parser.parse_args()
    runs = 1 if args.smoke else args.runs

    work = tempfile.mkdtemp(prefix="prefmill-rerun-")
    recipe, root = os.path.join(work, "recipe.yaml"), os.path.join(work, "data")
    with open(recipe, "w", encoding="utf-8") as f:
        f.write(RECIPE)
    env = _env(work)
    cli = [sys.executable, "-m", "prefmill", "build", recipe, "--root", root]
    print(
        f"prefmill rerun benchmark: CPython {platform.python_version()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}, {date.today()}"
    )
    first, _ = _timed(cli, env)
    print(f"first build (starts Prefect): {first:.1f} s")

    with open(os.path.join(root, "rerun", "refs", "latest.json"), encoding="utf-8") as f:
        built = json.load(f)["tables"]
    fast, flows = [], []
    same = True
    for _ in range(runs):
        seconds, proc = _timed(cli, env)
        fast.append(seconds)
        if "starting Prefect" in proc.stderr:
            print("FAIL: the unchanged rerun started Prefect")
            return 1
        same &= all(v in proc.stdout for v in built.values())
        if args.smoke:
            continue
        seconds, proc = _timed([sys.executable, "-c", VIA_FLOWS, recipe, root], env)
        flows.append(seconds)
        same &= json.loads(proc.stdout.strip().splitlines()[-1]) == built
    fast_s = sorted(fast)[len(fast) // 2]
    print(f"unchanged rerun, `prefmill build` (no Prefect): {fast_s:.2f} s (median of {runs})")
    if flows:
        flows_s = sorted(flows)[len(flows) // 2]
        print(f"unchanged rerun through the flows (Prefect):    {flows_s:.2f} s (median of {runs})")
        print(f"ratio (command / through the flows): {fast_s / flows_s:.2f}")
    print(f"same versions as the first build: {'PASS' if same else 'FAIL'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
