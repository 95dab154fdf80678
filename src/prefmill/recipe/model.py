"""The whole recipe: top-level fields, exports, prices."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from prefmill.errors import RecipeError
from prefmill.ids import DEFAULT_SEED
from prefmill.recipe.base import _Section
from prefmill.recipe.evaluation import EvaluationConfig
from prefmill.recipe.prompts import PromptsConfig
from prefmill.recipe.synthesis import SynthesisConfig
from prefmill.storage.store import check_name
from prefmill.storage.tables import EXPORT_FORMATS
from prefmill.task_runners import TASK_RUNNERS
from prefmill.tasks.instantiation.config import InstantiationConfig
from prefmill.tasks.steps.config import StepsConfig
from prefmill.trainers.config import IterateConfig, TrainConfig

#: The recipe's choice of export formats, built from the table registry.
ExportFormatName: Any = Literal[tuple(EXPORT_FORMATS)]  # type: ignore[valid-type]


class ExportConfig(_Section):
    """One export written at the end of `prefmill build` (same as `prefmill export`): a folder with
    the rows in a training library's format and a dataset card (README.md)."""

    format: ExportFormatName = Field(
        description="Columns: "
        + ", ".join(f"`{f.name}` ({f.summary})" for f in EXPORT_FORMATS.values())
        + "."
    )
    out: str = Field(description="Output folder; relative paths are relative to the recipe's folder.")
    table: str | None = Field(
        default=None, description="Table to export; default: pairs, points or prompts by format."
    )
    to: list[Literal["parquet", "disk", "jsonl"]] = Field(
        default_factory=lambda: ["parquet"],
        min_length=1,
        description="Containers: `parquet` (data/train-*.parquet, for load_dataset), `disk` "
        "(datasets' save_to_disk under hf/), `jsonl` (train.jsonl).",
    )
    conversational: bool | None = Field(
        default=None,
        description="TRL's conversational format (lists of {role, content}) or, when false, the standard "
        "text one; default: conversational when the prompts' chats are in the lineage (as `prefmill train` "
        "uses them), so a trainer applies the chat template as synthesis did.",
    )
    test_size: float | None = Field(
        default=None,
        gt=0,
        description="Also write a test split: a share (< 1) or a number (>= 1) of prompts; split by prompt, "
        "so no prompt is in both.",
    )
    seed: int = Field(default=0, description="Seed of the train/test split.")
    license: str | None = Field(default=None, description="License id for the card (e.g. `apache-2.0`).")
    language: list[str] | None = Field(default=None, description="Language codes for the card (e.g. `[en]`).")
    private: bool = Field(default=False, description="Create the Hub repo private (with `hub_repo`).")
    where: str | None = Field(
        default=None, description="SQL condition on the table's rows, e.g. \"criterion = 'overall'\"."
    )
    hub_repo: str | None = Field(
        default=None,
        description="Also push the export folder to this Hub dataset repo id (NAMESPACE/NAME); the token "
        "is found as the Hub client finds it (`hf auth login`, $HF_TOKEN) and checked before writing.",
    )


class Price(_Section):
    """The price of one model behind an `openai:` engine, in USD per million tokens (`prices.<model>`)."""

    input_per_mtok: float = Field(ge=0, description="USD per million prompt (input) tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million generated (output) tokens.")


class Recipe(_Section):
    """A build recipe."""

    dataset: str = Field(description="Dataset name: letters, digits, '.', '_', '-'.")
    root: str | None = Field(
        default=None,
        description="Storage root (folder or URI such as s3://bucket/prefix). Default: $PREFMILL_HOME "
        "or ./prefmill-data. A relative folder is relative to the recipe's folder.",
    )
    seed: int = Field(
        default=DEFAULT_SEED, description="Seed of all randomness (with prompt_id and sample index)."
    )
    shard_size: int = Field(
        default=64, ge=1, le=1_000_000, description="Prompts per shard: the unit of work, caching and resume."
    )
    max_shards_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="Shards whose requests are sent to one engine at once (each written as soon as its "
        "own rows are back; a killed build loses at most these). Default: enough shards to keep twice "
        "the engine's concurrency queued (openai `max_concurrency`, local engines' batch size). Speed "
        "only, not the rows. In-process engines (transformers, vLLM) batch fixed groups of this many "
        "consecutive shards together, so which requests share a batch follows from the plan, and a "
        "resumed build's log-probs equal a fresh build's to the last digit. Under Dask / Ray: shards "
        "per worker task.",
    )
    retry_errors: bool = Field(
        default=False,
        description="When a finished candidates version has failed rows, write a new version that "
        "re-attempts only those (the rest is taken by reference). Same as `prefmill build --retry-errors`.",
    )
    max_error_rate: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Error budget of every stage: when more than this share of a table's rows failed "
        "(`error` / `parse_error` set), or all of them, the build fails with the reason and moves no "
        "ref; the finished version is kept, so `prefmill build --retry-errors` re-attempts only its "
        "failed rows. 1 fails a build only when every row of a stage failed. Not part of any version.",
    )
    task_runner: Literal[TASK_RUNNERS] = Field(  # type: ignore[valid-type]
        default="local",
        description="Where shard tasks run: `local` (in the build's process), `dask` (Prefect's "
        "DaskTaskRunner: a local cluster of `workers` processes, or the cluster at `runner_address`), "
        "`ray` (RayTaskRunner). Speed only, not the rows. Same as `prefmill build --task-runner`.",
    )
    runner_address: str | None = Field(
        default=None,
        description="Address of a running Dask scheduler (tcp://host:8786) or Ray cluster; the root must "
        "then be on object storage and PREFECT_API_URL point at a server the workers reach.",
    )
    workers: int = Field(
        default=2, ge=1, le=1024, description="Worker processes of the local cluster a task runner starts."
    )
    prompts: PromptsConfig = Field(description="Prompt sources.")
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig, description="Response synthesis.")
    steps: StepsConfig | None = Field(
        default=None,
        description="Cut candidates into reasoning steps (the `steps` table, before evaluation) for the "
        "step-level judges (optional).",
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation.")
    instantiation: InstantiationConfig = Field(
        default_factory=InstantiationConfig, description="Instantiation."
    )
    export: list[ExportConfig] = Field(
        default_factory=list, description="Exports written at the end of a full build (see below)."
    )
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Price table for `openai:` engines: model name -> {input_per_mtok, output_per_mtok} "
        "(USD per million tokens). Each candidate's `cost_usd` and the manifest's `cost_usd` total come "
        "from it (judges' and revisers' `openai:` engines are priced by it too); models without an "
        "entry have no cost. Local engines cost nothing here.",
    )
    train: TrainConfig | None = Field(
        default=None, description="`prefmill train`: a TRL run on a table of this dataset (optional)."
    )
    iterate: IterateConfig | None = Field(
        default=None, description="`prefmill iterate`: build -> train -> build rounds (optional)."
    )
    base_dir: str = Field(default=".", exclude=True, description="Folder of the recipe file (set on load).")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        try:
            return check_name("dataset", v)
        except Exception as exc:
            raise ValueError(str(exc)) from None

    def resolve_path(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def storage_root(self, override: str | None = None) -> str:
        """The root to build into: ``override`` (CLI), the recipe's root, $PREFMILL_HOME, ./prefmill-data."""
        if override:
            return override
        if self.root:
            return self.root if "://" in self.root else str(self.resolve_path(self.root))
        return os.environ.get("PREFMILL_HOME") or "./prefmill-data"

    def sql_text(self, output: str) -> str | None:
        """The user's SQL for an output, if the recipe replaces the built-in file."""
        path = self.instantiation.sql.get(output)  # type: ignore[call-overload]
        if path is None:
            return None
        file = self.resolve_path(path)
        try:
            return file.read_text(encoding="utf-8")
        except OSError as exc:
            raise RecipeError(
                f"instantiation.sql.{output}: cannot read {file} ({exc.strerror}); fix the path"
            ) from None


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (a prompt file's content, not its name, decides the version)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
