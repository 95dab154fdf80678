"""The `train` flow: a prefmill table version -> a TRL-trained checkpoint, evaluated before and after.

Separate from `build` (DESIGN §4). Its output is a version of the `checkpoints` table (one row that
points at the model folder, which sits in that version's folder for local roots) and a `train_eval`
version (held-out answers before and after). The checkpoint version id is a content hash of the
trainer config, the TRL version and the parents (the training table version, and the checkpoint it
started from when it continued one), so an unchanged `prefmill train` finds its checkpoint and does
no work, and `prefmill lineage checkpoints` shows which tables and recipe trained it.
"""

from __future__ import annotations

import gc
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from prefect import flow, task

from prefmill.engines.model_cache import EMBEDDED_NAME, is_embedded_name, resolve_model
from prefmill.errors import InputError, NotFoundError
from prefmill.flows.common import SHARD_TASK, STAGE_FLOW, Target, current_flow_run_id, log
from prefmill.flows.startup import start_local_api
from prefmill.ids import content_id
from prefmill.storage import Manifest, Parent, Store
from prefmill.trainers.config import TrainConfig
from prefmill.trainers.data import TrainRows
from prefmill.trainers.methods import METHODS

STAGE = "train"
#: Bump when the rows or checkpoints this flow writes for the same inputs change meaning.
TRAIN_CODE_VERSION = "1"
#: Written into every checkpoint folder: the lineage travels with a copied folder.
CHECKPOINT_FILE = "prefmill-checkpoint.json"


@dataclass
class TrainSummary:
    """What `prefmill train` produced (or found already trained)."""

    dataset: str
    root: str
    method: str
    checkpoint: str  # version of the `checkpoints` table
    path: str  # the model folder
    input: str  # TABLE@VERSION trained on
    base_model: str
    rows: int
    steps: int
    train_loss: float
    losses: list[float]
    accuracy_before: float | None
    accuracy_after: float | None
    eval_n: int
    eval_version: str | None
    cached: bool
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)
    flow_run_id: str | None = None


@dataclass(frozen=True)
class StartModel:
    """The model a run starts from: a folder, how lineage names it, and its checkpoint version if any."""

    path: Path
    label: str
    checkpoint: str | None = None


def resolve_base(store: Store, dataset: str, name: str) -> StartModel:
    """``smollm2``, a folder, ``transformers:...`` or ``checkpoints@VERSION`` -> a model folder."""
    text = name.removeprefix("transformers:")
    if text.startswith("checkpoints@"):
        m = store.resolve_version(dataset, "checkpoints", text.partition("@")[2])
        row = store.read_arrow(m).to_pylist()[0]
        path = Path(row["path"])
        if not path.is_dir():
            raise NotFoundError(
                f"checkpoint checkpoints@{m.version} points at {path}, which does not exist; "
                "train it again or name a model folder"
            )
        return StartModel(path, f"checkpoints@{m.version}", m.version)
    path = resolve_model(text)
    return StartModel(path, EMBEDDED_NAME if is_embedded_name(text) else str(path.resolve()))


def prompts_of(store: Store, m: Manifest) -> Manifest | None:
    """The `prompts` version a table was made from (itself when it is one)."""
    if m.table == "prompts":
        return m
    return next((a for a in store.ancestors(m) if a.table == "prompts"), None)


def training_rows(store: Store, config: TrainConfig, m: Manifest) -> TrainRows:
    """The TRL rows of ``config.method`` from table version ``m``."""
    method = METHODS[config.method]
    if m.table not in method.accepts:
        raise InputError(
            f"train: method '{method.name}' trains on {' or '.join(method.accepts)}, not '{m.table}'; "
            f"set train.table (or --table) to one of those"
        )
    if method.contract == "stepwise":  # the steps and the step labels made from them
        from prefmill.exports.stepwise import stepwise_rows

        return method.rows(stepwise_rows(store, m), None, f"{m.table}@{m.version}")
    table = store.read_arrow(m)
    pm = prompts_of(store, m)
    prompts = store.read_arrow(pm) if pm is not None else None
    return method.rows(table, prompts, f"{m.table}@{m.version}")


def version_config(config: TrainConfig, base: StartModel, trl: str) -> dict[str, Any]:
    """What decides the checkpoint version (``output_dir`` is where it goes, not what it is): the
    ``train:`` section less the other methods' own options (a GRPO option does not make a new DPO
    checkpoint)."""
    own = METHODS[config.method].options
    mine = set(own.model_fields) if own is not None else set()
    others = {f for m in METHODS.values() if m.options is not None for f in m.options.model_fields} - mine
    body = config.model_dump(mode="json", exclude={"output_dir", "table", "ref", *others})
    return {**body, "base_model": base.label, "trl_version": trl}


@task(name="train-evaluate", **{**SHARD_TASK, "retries": 0})
def evaluate_task(
    model_dir: str, label: str, phase: str, config: TrainConfig, exclude: list[str]
) -> pa.Table:
    """Held-out accuracy of one model folder (loaded for this call only)."""
    from prefmill.engines.transformers.engine import TransformersEngine
    from prefmill.trainers.evaluate import evaluate, held_out_prompts

    prompts = held_out_prompts(config.eval, set(exclude))
    if prompts.num_rows == 0:
        return evaluate(prompts, None, phase=phase, model=label, max_new_tokens=1)  # type: ignore[arg-type]
    engine = TransformersEngine(model_dir, batch_size=max(1, min(64, prompts.num_rows)))
    try:
        return evaluate(prompts, engine, phase=phase, model=label, max_new_tokens=config.eval.max_new_tokens)
    finally:
        del engine
        gc.collect()


@task(name="train-model", **{**SHARD_TASK, "retries": 0})
def train_task(
    rows: list[dict[str, Any]], config: TrainConfig, model_dir: str, out_dir: str
) -> dict[str, Any]:
    from prefmill.trainers.runner import train

    result = train(rows, config, model_dir, out_dir)
    gc.collect()
    return asdict(result)


def _checkpoint_dir(store: Store, config: TrainConfig, dataset: str, version: str) -> Path:
    if config.output_dir:
        return Path(config.output_dir).expanduser().resolve() / version
    if store.loc.is_local:
        return Path(store.version_path(dataset, "checkpoints", version)) / "model"
    return Path("prefmill-checkpoints").resolve() / dataset / version


def _summary_of(
    store: Store, m: Manifest, eval_m: Manifest | None, *, cached: bool, started: float
) -> TrainSummary:
    row = store.read_arrow(m).to_pylist()[0]
    return TrainSummary(
        dataset=m.dataset,
        root=store.root,
        method=row["method"],
        checkpoint=m.version,
        path=row["path"],
        input=f"{row['train_table']}@{row['train_version']}",
        base_model=row["base_model"],
        rows=int(row["train_rows"] or 0),
        steps=int(row["steps"] or 0),
        train_loss=float(row["train_loss"]),
        losses=list(row["losses"] or []),
        accuracy_before=row["accuracy_before"],
        accuracy_after=row["accuracy_after"],
        eval_n=int(row["eval_n"] or 0),
        eval_version=eval_m.version if eval_m else None,
        cached=cached,
        seconds=0.0 if cached else time.perf_counter() - started,
        skipped=dict(m.stats.get("skipped", {})),
        flow_run_id=m.flow_run_id,
    )


def _eval_target(store: Store, dataset: str, checkpoint: str, config: TrainConfig) -> Target:
    return Target.open(
        store,
        dataset,
        "train_eval",
        stage=STAGE,
        code_version=TRAIN_CODE_VERSION,
        config={"eval": config.eval.model_dump(mode="json")},
        parents=[Parent("checkpoints", checkpoint)],
    )


@flow(name="prefmill-train", **STAGE_FLOW)
def train_flow(config: TrainConfig, root: str, dataset: str) -> TrainSummary:
    """Train ``config.method`` on a table of ``dataset``; publish `checkpoints` and `train_eval`."""
    from prefmill.trainers.evaluate import accuracy
    from prefmill.trainers.runner import trl_version

    started = time.perf_counter()
    store = Store(root)
    table, version = config.input_table()
    data_m = store.resolve_version(dataset, table, version, config.ref)
    base = resolve_base(store, dataset, config.base_model)
    trl = trl_version()
    parents = [Parent(data_m.table, data_m.version)]
    if METHODS[config.method].contract == "stepwise":  # the step labels decide the checkpoint too
        from prefmill.exports.stepwise import stepwise_labels

        labels = stepwise_labels(store, data_m)
        parents.append(Parent(labels.table, labels.version))
    if base.checkpoint:
        parents.append(Parent("checkpoints", base.checkpoint))
    target = Target.open(
        store,
        dataset,
        "checkpoints",
        stage=STAGE,
        code_version=TRAIN_CODE_VERSION,
        config=version_config(config, base, trl),
        parents=parents,
    )
    if (done := target.existing) is not None:
        eval_done = _eval_target(store, dataset, done.version, config).existing
        log().info("train: cached checkpoints@%s", done.version)
        _point_ref(store, dataset, config.ref, done, eval_done)
        return _summary_of(store, done, eval_done, cached=True, started=started)

    rows = training_rows(store, config, data_m)
    pm = prompts_of(store, data_m)
    exclude = store.read_arrow(pm, columns=["prompt_id"]).column("prompt_id").to_pylist() if pm else []
    log().info(
        "train: %s on %d rows of %s@%s from %s",
        config.method,
        len(rows.rows),
        data_m.table,
        data_m.version,
        base.label,
    )
    evals: list[pa.Table] = []
    if config.eval.n:
        evals.append(evaluate_task(str(base.path), base.label, "before", config, exclude))
    out_dir = _checkpoint_dir(store, config, dataset, target.version)
    result = train_task(rows.rows, config, str(base.path), str(out_dir))
    if result.get("from_rows"):
        log().info("train: %s arguments from the rows: %s", config.method, result["from_rows"])
    label = f"checkpoints@{target.version}"
    if config.eval.n and METHODS[config.method].generates:
        evals.append(evaluate_task(result["path"], label, "after", config, exclude))
    before = accuracy(evals[0]) if evals else None
    after = accuracy(evals[1]) if len(evals) > 1 else None
    record = {
        "checkpoint_id": content_id([dataset, target.version]),
        "method": config.method,
        "base_model": base.label,
        "path": result["path"],
        "model_class": result["model_class"],
        "train_table": data_m.table,
        "train_version": data_m.version,
        "train_rows": len(rows.rows),
        "steps": result["steps"],
        "train_loss": result["train_loss"],
        "losses": result["losses"],
        "seconds": round(result["seconds"], 3),
        "trl_version": result["trl_version"],
        "eval_n": evals[0].num_rows if evals else 0,
        "accuracy_before": before,
        "accuracy_after": after,
    }
    (Path(result["path"]) / CHECKPOINT_FILE).write_text(
        json.dumps(
            {
                **record,
                "dataset": dataset,
                "root": store.root,
                "checkpoint": target.version,
                "parents": [asdict(p) for p in parents],
                "config": target.config,
                "trl_from_rows": result.get("from_rows") or {},
            },
            indent=2,
            default=str,
        )
    )
    target.writer.write_shard(0, pa.Table.from_pylist([record]))
    published = target.publish(expected_shards=1, extra_stats={"skipped": rows.skipped})
    checkpoint_m = store.manifest(dataset, "checkpoints", published.version)
    eval_m = None
    if evals:
        et = _eval_target(store, dataset, checkpoint_m.version, config)
        if et.existing is None:
            et.writer.write_shard(0, pa.concat_tables(evals))
            et.publish(expected_shards=1)
        eval_m = et.existing
    _point_ref(store, dataset, config.ref, checkpoint_m, eval_m)
    return _summary_of(store, checkpoint_m, eval_m, cached=False, started=started)


def _point_ref(store: Store, dataset: str, ref: str, checkpoint: Manifest, eval_m: Manifest | None) -> None:
    """Add `checkpoints` (and `train_eval`) to ``ref``, keeping the tables it already names."""
    try:
        current = store.read_ref(dataset, ref)
        tables, info = dict(current.tables), dict(current.info)
    except NotFoundError:
        tables, info = {}, {}
    tables["checkpoints"] = checkpoint.version
    if eval_m is not None:
        tables["train_eval"] = eval_m.version
    else:
        tables.pop("train_eval", None)
    info["train_flow_run_id"] = current_flow_run_id()
    store.write_ref(dataset, ref, tables, info=info)


def run_train(config: TrainConfig, root: str, dataset: str) -> TrainSummary:
    """Check the inputs up front (dataset, table, base model, TRL and the trainer), then run the flow."""
    from prefmill.trainers.runner import trainer_classes

    store = Store(root)
    table, version = config.input_table()
    data_m = store.resolve_version(dataset, table, version, config.ref)
    if METHODS[config.method].contract == "stepwise" and data_m.table == "steps":
        from prefmill.exports.stepwise import stepwise_labels

        stepwise_labels(store, data_m)  # step labels exist (else one line, before Prefect starts)
    resolve_base(store, dataset, config.base_model)
    trainer_classes(config.method)
    start_local_api()
    return train_flow(config, root, dataset)
