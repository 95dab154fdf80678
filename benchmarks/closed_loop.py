"""Closed-loop benchmark: does training on prefmill's verifier signal make the embedded model better?

Every method runs the same loop on the same prompts and budget. Round r builds a recipe of
``--prompts`` seeded arithmetic word problems (seed r-1, the same problems for every method), samples
``--k`` answers per problem (a temperature ladder) from the method's current policy (round 1: the
base SmolLM2-135M-Instruct, so round 1's build is shared by all methods), scores them with the
arithmetic verifier, and trains the policy on what the round built:

- ``dpo``: prefmill's DPO on the verifier's correct-vs-wrong pairs (``pairs``, margin >= 0.5);
- ``kto``: prefmill's KTO on the verifier's labels (``points``: each sample, desirable if correct);
- ``grpo``: prefmill's GRPO with the verifier as reward (samples its own ``--k`` completions online);
- ``rft``: rejection-sampling fine-tuning, the baseline a user would try first: supervised
  fine-tuning on the accepted (correct) samples. prefmill has no SFT method, so this is plain TRL
  ``SFTTrainer`` on the ``points`` rows whose label is true (same LoRA, learning rate and epochs).

Every policy (the base, then each method's checkpoint after each round) answers the same
``--eval`` held-out problems greedily (seed 10000; any problem also in a training round is removed
and the count printed); accuracy is the arithmetic verifier's, with a 95% bootstrap interval, and the
difference to the base with a paired bootstrap interval (same problems). A round whose build gives
a method no rows (no pair, no accepted sample) keeps its policy and says so.

    .venv/bin/python benchmarks/closed_loop.py                # all 4 methods, 2 rounds, 200 held out
    .venv/bin/python benchmarks/closed_loop.py --methods dpo,rft --rounds 1 --prompts 32 --eval 50
    .venv/bin/python benchmarks/closed_loop.py --smoke        # a few minutes; CI runs it

The defaults (2 rounds x 128 problems x k=8 on the ladder 0.5 / 0.8 / 1.0, 15 LoRA steps per round at
lr 2e-4, batch 4) are the settings of the recorded run (docs/benchmarks.md) whose DPO round 2 beat the
base by 8 points: about 40 minutes per method on 2 CPU cores. ``--max-steps 0`` trains ``--epochs``
instead. GRPO reads the round's prompts only (it samples while it trains).

``--smoke``: 1 round of 8 easy problems (operands <= 4) x 2 samples (T = 0, 0.7), one optimizer step,
4 held-out problems, 24 new tokens, method ``rft`` only unless ``--methods`` names others (``--smoke
--methods dpo,kto,grpo,rft`` runs all four): checks the loop and the SFT path run end to end, not
that anything improves. About 3 minutes on 2 busy cores (model loads and TRL set-up dominate).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

METHODS = ("dpo", "kto", "grpo", "rft")
#: the table each method trains on
TABLE = {"dpo": "pairs", "kto": "points", "grpo": "prompts", "rft": "points"}
EVAL_SEED = 10_000
#: ``--smoke``'s default: the method whose trainer lives here (prefmill's DPO, KTO and GRPO trainers
#: are run for real by tests/integration/test_train.py)
SMOKE_METHODS = "rft"

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
  temperature: {temperatures}
  max_new_tokens: {max_new_tokens}
evaluation:
  judges: [arithmetic]
instantiation:
  outputs: [pairs, points]
  pair_strategies: [best_vs_worst]
  min_margin: 0.5
"""


@dataclass
class Round:
    rows: int  # what the method trained on (0: the round was skipped)
    accuracy: float
    scores: list[float]
    seconds: float
    phases: str  # build / train / eval seconds


@dataclass
class Run:
    method: str
    rounds: list[Round] = field(default_factory=list)


def bootstrap(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values``."""
    if not values:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    size = len(values)
    means = sorted(sum(rng.choices(values, k=size)) / size for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n) - 1]


def paired_difference(after: list[float], before: list[float]) -> tuple[float, float, float]:
    """Mean of ``after - before`` over the same problems and its 95% bootstrap interval."""
    diffs = [a - b for a, b in zip(after, before, strict=True)]
    low, high = bootstrap(diffs)
    return sum(diffs) / len(diffs), low, high


def held_out(n: int, max_operand: int, training: set[str]) -> tuple[Any, int]:
    """``n`` problems (seed ``EVAL_SEED``) none of which a training round holds; and how many were removed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from prefmill.tasks.prompts.arithmetic import arithmetic_problems

    table = arithmetic_problems(n * 2 + len(training), EVAL_SEED, max_operand=max_operand)
    texts = pa.array([m[-1]["content"] for m in table.column("messages").to_pylist()])
    seen = pc.is_in(texts, pa.array(sorted(training), pa.string()))
    removed = int(pc.sum(seen.slice(0, n)).as_py() or 0)
    return table.filter(pc.invert(seen)).slice(0, n), removed


def training_problems(args: argparse.Namespace) -> set[str]:
    from prefmill.tasks.prompts.arithmetic import arithmetic_problems

    return {
        p["messages"][-1]["content"]
        for r in range(args.rounds)
        for p in arithmetic_problems(args.prompts, r, max_operand=args.max_operand).to_pylist()
    }


def evaluate(model_dir: str, prompts: Any, max_new_tokens: int) -> list[float]:
    """Greedy held-out scores (1.0 right, 0.0 wrong or failed) of one model folder, in prompt order."""
    import gc

    from prefmill.engines.transformers.engine import TransformersEngine
    from prefmill.trainers.evaluate import evaluate as run_eval

    engine = TransformersEngine(model_dir, batch_size=min(64, prompts.num_rows))
    try:
        table = run_eval(prompts, engine, phase="eval", model=model_dir, max_new_tokens=max_new_tokens)
    finally:
        del engine
        gc.collect()
    by_id = dict(zip(table.column("prompt_id").to_pylist(), table.column("score").to_pylist(), strict=True))
    return [float(by_id.get(p) or 0.0) for p in prompts.column("prompt_id").to_pylist()]


def train_config(args: argparse.Namespace, method: str, base: str, ref: str) -> Any:
    from prefmill.trainers.config import TrainConfig

    options: dict[str, Any] = {
        "method": method,
        "base_model": base,
        "ref": ref,
        "table": TABLE[method],
        "learning_rate": args.lr,
        "epochs": args.epochs,
        "max_steps": args.max_steps or None,
        "batch_size": 4,
        "max_length": 256,
        "lora": {"r": 16, "alpha": 32},
        "eval": {"n": 0},
    }
    if method in ("dpo", "kto"):
        options["beta"] = args.beta
    if method == "kto":
        options["class_balance"] = args.kto_class_balance == "on"
    if method == "grpo":
        # TRL wants the batch to hold whole groups: the smallest multiple of k that is >= 4
        batch = args.k * -(-4 // args.k)
        options.update(num_generations=args.k, max_completion_length=args.max_new_tokens, batch_size=batch)
    return TrainConfig.model_validate(options)


def sft_on_accepted(store: Any, ref: str, model_dir: str, out_dir: Path, args: argparse.Namespace) -> int:
    """Rejection-sampling fine-tuning (plain TRL SFT, not a prefmill method): the round's accepted
    samples (``points`` with label true) as prompt/completion rows. Returns the row count (0: skipped)."""
    from prefmill.flows.train import training_rows
    from prefmill.trainers.config import TrainConfig

    m = store.resolve_version("loop", "points", None, ref)
    rows = training_rows(store, TrainConfig(method="kto", table="points"), m).rows
    accepted = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows if r["label"]]
    if not accepted:
        return 0
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = SFTConfig(
        output_dir=str(out_dir) + ".work",
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1,
        per_device_train_batch_size=4,
        max_length=256,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        use_cpu=not _cuda(),
        # as prefmill's trainers (trainers/runner.py): TRL's SFTConfig defaults to bf16 and gradient
        # checkpointing; on this 2-core CPU a step took 78 s with them and 7.6 s without
        bf16=_cuda() and _bf16(),
        gradient_checkpointing=False,
    )
    lora = LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(accepted),
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    shutil.rmtree(str(out_dir) + ".work", ignore_errors=True)
    return len(accepted)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def run_method(
    method: str, args: argparse.Namespace, recipe: Any, root: str, prompts: Any, base_scores: list[float]
) -> Run:
    from prefmill.engines.model_cache import embedded_model_dir
    from prefmill.errors import PrefmillError
    from prefmill.flows import run_build
    from prefmill.flows.iterate import round_recipe
    from prefmill.flows.train import run_train
    from prefmill.storage import Store
    from prefmill.trainers.config import IterateConfig

    store = Store(root)
    it = IterateConfig(rounds=args.rounds, mode="dpo", fresh_prompts=True)
    base, folder, policy = "smollm2", str(embedded_model_dir()), None
    run = Run(method)
    for r in range(1, args.rounds + 1):
        started = time.perf_counter()
        ref = f"{method}-round-{r}"
        # GRPO samples its own completions while it trains: its round needs the prompts only
        run_build(
            round_recipe(recipe, r, policy, it),
            root,
            ref=ref,
            stop_after="prompts" if method == "grpo" else None,
        )
        built = time.perf_counter()
        n = 0
        if method == "rft":
            out = Path(root) / "rft" / f"round-{r}"
            n = sft_on_accepted(store, ref, folder, out, args)
            if n:
                base, folder = str(out), str(out)
        else:
            try:
                trained = run_train(train_config(args, method, base, ref), root, "loop")
            except PrefmillError as exc:  # "no rows to train ... on": keep the policy
                print(f"  {method} round {r}: not trained ({exc})")
            else:
                n, base, folder = trained.rows, f"checkpoints@{trained.checkpoint}", trained.path
        policy = f"transformers:{folder}" if n else policy
        trained_at = time.perf_counter()
        scores = evaluate(folder, prompts, args.max_new_tokens)
        seconds = time.perf_counter() - started
        phases = f"{built - started:.0f}/{trained_at - built:.0f}/{started + seconds - trained_at:.0f}"
        run.rounds.append(Round(n, sum(scores) / len(scores), scores, seconds, phases))
        low, high = bootstrap(scores)
        diff, dlow, dhigh = paired_difference(scores, base_scores)
        print(  # as it comes, with its intervals: a run stopped before the table still has them
            f"  {method} round {r}: {n} rows, held-out accuracy {run.rounds[-1].accuracy:.3f} "
            f"[{low:.3f}, {high:.3f}], vs base {diff:+.3f} [{dlow:+.3f}, {dhigh:+.3f}], "
            f"{seconds:.0f} s (build/train/eval {phases} s)",
            flush=True,
        )
    return run


def table(base: list[float], runs: list[Run]) -> str:
    low, high = bootstrap(base)
    lines = [
        "| policy | trained on (rows) | held-out acc [95% CI] | vs base [95% CI, paired] "
        "| s (build/train/eval) |",
        "|---|---|---|---|---|",
        f"| base | - | {sum(base) / len(base):.3f} [{low:.3f}, {high:.3f}] | - | - |",
    ]
    for run in runs:
        for i, r in enumerate(run.rounds, start=1):
            low, high = bootstrap(r.scores)
            d, dl, dh = paired_difference(r.scores, base)
            what = f"{TABLE[run.method]} ({r.rows})" if r.rows else "nothing (round skipped)"
            lines.append(
                f"| {run.method} round {i} | {what} | {r.accuracy:.3f} [{low:.3f}, {high:.3f}] | "
                f"{d:+.3f} [{dl:+.3f}, {dh:+.3f}] | {r.seconds:.0f} ({r.phases}) |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=128, help="arithmetic problems per round")
    parser.add_argument("--k", type=int, default=8, help="samples per problem (GRPO: completions per prompt)")
    parser.add_argument("--temperatures", default="0.5,0.8,1.0", help="sampling ladder, comma-separated")
    parser.add_argument("--eval", type=int, default=200, help="held-out problems")
    parser.add_argument("--max-operand", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument(
        "--kto-class-balance", choices=("on", "off"), default="on", help="KTO's class_balance (default on)"
    )
    parser.add_argument(
        "--max-steps", type=int, default=15, help="optimizer steps per round (overrides epochs; 0: epochs)"
    )
    parser.add_argument("--root", default=None, help="storage root (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true", help="1 tiny round, rft unless --methods (see above)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.prompts, args.k, args.eval, args.max_new_tokens, args.epochs = 1, 8, 2, 4, 24, 1.0
        # greedy first and operands up to 4: the 135M model gets a few right, so there is something to train
        args.max_steps, args.temperatures, args.max_operand = 1, "0.0,0.7", 4
        if args.methods == ",".join(METHODS):
            args.methods = SMOKE_METHODS
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return args


def main() -> int:
    args = parse_args()
    from prefmill.prefect_env import apply_prefect_env

    apply_prefect_env()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from importlib.metadata import version

    import torch

    from prefmill.engines.model_cache import embedded_model_dir
    from prefmill.flows.startup import start_local_api
    from prefmill.recipe import parse_recipe

    folder = Path(args.root or tempfile.mkdtemp(prefix="prefmill-loop-"))
    text = RECIPE.format(
        prompts=args.prompts,
        max_operand=args.max_operand,
        k=args.k,
        temperatures="[" + args.temperatures + "]",
        max_new_tokens=args.max_new_tokens,
    )
    recipe = parse_recipe(text, name="closed_loop.yaml", base_dir=folder)
    prompts, removed = held_out(args.eval, args.max_operand, training_problems(args))
    device = "cuda" if _cuda() else f"cpu ({os.cpu_count()} cores)"
    budget = f"{args.max_steps} steps" if args.max_steps else f"{args.epochs} epochs"
    balance = f", KTO class_balance {args.kto_class_balance}" if "kto" in args.methods else ""
    print(
        f"prefmill closed loop: {', '.join(args.methods)}; {args.rounds} rounds x {args.prompts} problems x "
        f"k={args.k} at T=[{args.temperatures}], {args.max_new_tokens} new tokens, lr {args.lr}, "
        f"{budget} per round{balance}; "
        f"{prompts.num_rows} held-out problems ({removed} removed: in training); "
        f"CPython {platform.python_version()}, torch {torch.__version__}, trl {version('trl')}, {device}, "
        f"{date.today()}"
    )
    started = time.perf_counter()
    start_local_api()
    root = str(folder / "data")
    base = evaluate(str(embedded_model_dir()), prompts, args.max_new_tokens)
    low, high = bootstrap(base)
    print(f"  base: held-out accuracy {sum(base) / len(base):.3f} [{low:.3f}, {high:.3f}]", flush=True)
    runs = [run_method(m, args, recipe, root, prompts, base) for m in args.methods]
    print()
    print(table(base, runs))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.smoke and args.root is None:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"data: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
