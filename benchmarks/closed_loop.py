"""Closed-loop benchmark: iterative DPO rounds on arithmetic prompts with the embedded model.

Each round builds a fresh set of arithmetic word problems, samples k answers from the current policy
(round 1: SmolLM2-135M-Instruct; round r: round r-1's checkpoint), judges them with the arithmetic
verifier, builds best-vs-worst pairs and trains the policy on them with TRL's DPOTrainer (LoRA,
merged after each round). The baseline is the starting model's held-out accuracy, measured in the
same run on the same held-out problems; the script prints each round's accuracy and its ratio to it.

    .venv/bin/python benchmarks/closed_loop.py                       # 2 rounds, small
    .venv/bin/python benchmarks/closed_loop.py --rounds 3 --prompts 48 --eval 48 --mode spin
    .venv/bin/python benchmarks/closed_loop.py --smoke                # seconds to minutes; CI runs it

``--smoke`` runs one tiny SPIN round (2 prompts x 2 samples, 1 held-out problem, 8 new tokens, one
epoch): SPIN pairs the reference answer against each sample, so a tiny round always has pairs to
train on, where DPO on a handful of samples of a 135M model often has none.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RECIPE = """
dataset: loop
seed: 0
shard_size: 64
prompts:
  sources:
    - kind: arithmetic
      n: {prompts}
      seed: 0
      max_operand: {max_operand}
synthesis:
  k: {k}
  temperature: 1.0
  max_new_tokens: {max_new_tokens}
evaluation:
  judges: [arithmetic]
instantiation:
  outputs: [pairs]
  min_margin: 0.5
train:
  method: dpo
  beta: {beta}
  learning_rate: {lr}
  epochs: {epochs}
  batch_size: 4
  max_length: 256
  lora: {{r: 16, alpha: 32}}
  eval: {{n: {eval_n}, seed: 1000, max_operand: {max_operand}, max_new_tokens: {max_new_tokens}}}
iterate:
  rounds: {rounds}
  mode: {mode}
  fresh_prompts: true
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=["dpo", "spin"], default="dpo")
    parser.add_argument("--prompts", type=int, default=24, help="arithmetic prompts per round")
    parser.add_argument("--k", type=int, default=4, help="samples per prompt")
    parser.add_argument("--eval", type=int, default=24, help="held-out problems")
    parser.add_argument("--max-operand", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--root", default=None, help="storage root (default: a temporary folder)")
    parser.add_argument(
        "--smoke", action="store_true", help="one tiny SPIN round: 2 prompts x 2, 1 held out, 8 new tokens"
    )
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.prompts, args.k, args.eval, args.max_new_tokens, args.epochs = 1, 2, 2, 1, 8, 1.0
        args.mode = "spin"

    from prefmill.prefect_env import apply_prefect_env

    apply_prefect_env()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from importlib.metadata import version

    import torch

    from prefmill.flows.iterate import run_iterate
    from prefmill.recipe import parse_recipe

    folder = Path(args.root or tempfile.mkdtemp(prefix="prefmill-loop-"))
    text = RECIPE.format(
        prompts=args.prompts,
        max_operand=args.max_operand,
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        beta=args.beta,
        lr=args.lr,
        epochs=args.epochs,
        eval_n=args.eval,
        rounds=args.rounds,
        mode=args.mode,
    )
    recipe = parse_recipe(text, name="closed_loop.yaml", base_dir=folder)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    print(
        f"prefmill closed-loop benchmark: {args.mode}, {args.rounds} rounds x {args.prompts} prompts x "
        f"k={args.k}, {args.eval} held-out, lr {args.lr}, beta {args.beta}, {args.epochs} epochs; "
        f"CPython {platform.python_version()}, torch {torch.__version__}, trl {version('trl')}, {device}, "
        f"{date.today()}"
    )
    started = time.perf_counter()
    summary = run_iterate(recipe, str(folder / "data"))
    seconds = time.perf_counter() - started
    base = summary.rounds[0].train.accuracy_before
    print()
    print(
        "| round | policy sampled | pairs | steps | train loss | held-out acc before | after | after/base |"
    )
    print(
        "|-------|----------------|-------|-------|------------|---------------------|-------|------------|"
    )
    for r in summary.rounds:
        t = r.train
        ratio = "-" if not base or t.accuracy_after is None else f"{t.accuracy_after / base:.2f}"
        policy = "base" if r.round == 1 else f"round {r.round - 1}"
        print(
            f"| {r.round} | {policy} | {r.pairs_rows} | {t.steps} | {t.train_loss:.4f} | "
            f"{t.accuracy_before:.3f} | {t.accuracy_after:.3f} | {ratio} |"
        )
    print(
        f"\nbase accuracy {base:.3f} on {summary.rounds[0].train.eval_n} held-out problems; {seconds:.0f} s"
    )
    if args.smoke and args.root is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"data: {folder / 'data'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
