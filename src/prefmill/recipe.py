"""Build recipes: one YAML file per dataset build, validated by pydantic.

Every field is documented where it is declared; ``docs/recipe.md`` is generated from these docs
(``python -m prefmill.recipe > docs/recipe.md``). Validation errors name the file, the line, the
field and what is wrong, in one line.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefmill.errors import RecipeError
from prefmill.storage.store import check_name
from prefmill.trainers.config import IterateConfig, TrainConfig, TrainEvalConfig, TrainLoraConfig

STAGES = ("prompts", "synthesis", "evaluation", "instantiation")
OUTPUTS = ("pairs", "points", "lists")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(_Section):
    """Prompts read from a JSONL, CSV or Parquet file."""

    kind: Literal["file"] = Field(description="`file`.")
    path: str = Field(description="Path of the file; relative paths are relative to the recipe's folder.")
    format: Literal["jsonl", "csv", "parquet"] | None = Field(
        default=None, description="File format; by default taken from the suffix."
    )
    field: str = Field(default="prompt", description="Column holding the prompt text.")
    messages_field: str = Field(
        default="messages", description="Column holding a chat (list of {role, content}) instead of text."
    )
    reference_field: str = Field(default="reference", description="Column with a gold answer, if any.")
    rubric_field: str = Field(default="rubric", description="Column with a per-prompt rubric, if any.")


class ArithmeticSource(_Section):
    """Seeded arithmetic word problems with exact answers in `reference`."""

    kind: Literal["arithmetic"] = Field(description="`arithmetic`.")
    n: int = Field(ge=1, le=1_000_000, description="How many problems.")
    seed: int = Field(default=0, description="Seed of the generator: same seed, same problems.")
    max_operand: int = Field(default=50, ge=2, le=1_000_000, description="Largest operand.")


PromptSource = Annotated[FileSource | ArithmeticSource, Field(discriminator="kind")]


class PromptsConfig(_Section):
    """Stage 0: where prompts come from."""

    sources: list[PromptSource] = Field(min_length=1, description="Prompt sources, read in order.")


class SynthesisConfig(_Section):
    """Stage 1: response synthesis (candidates y1..yk per prompt)."""

    engine: str = Field(
        default="transformers:smollm2",
        description="Generation engine as `kind:model`; `transformers:smollm2` is the embedded model.",
    )
    k: int = Field(default=4, ge=1, le=256, description="Samples per prompt.")
    temperature: float | list[float] = Field(
        default=0.8,
        description="Sampling temperature, or a ladder: sample i uses entry i mod len(ladder).",
    )
    top_p: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    max_new_tokens: int = Field(default=128, ge=1, le=32768, description="Longest response in tokens.")
    batch_size: int = Field(
        default=64, ge=1, le=4096, description="Sequences per engine call (speed only, not the output)."
    )

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, v: float | list[float]) -> float | list[float]:
        values = v if isinstance(v, list) else [v]
        if not values or any(t < 0 or t > 5 for t in values):
            raise ValueError("temperatures must be between 0 and 5 (a non-empty list for a ladder)")
        return v

    @property
    def temperatures(self) -> list[float]:
        return list(self.temperature) if isinstance(self.temperature, list) else [self.temperature]


class EvaluationConfig(_Section):
    """Stage 2: preference evaluation (adjudicators write rows of `judgments`)."""

    judges: list[str] = Field(
        default_factory=lambda: ["arithmetic", "heuristic"],
        min_length=1,
        description="Adjudicators: `arithmetic` (final-answer verifier for prompts with a reference), "
        "`heuristic` (length-normalised quality heuristic for prompts without one).",
    )


class InstantiationConfig(_Section):
    """Stage 3: preference instantiation (DuckDB SQL turns judgments into training signal)."""

    outputs: list[Literal["pairs", "points", "lists"]] = Field(
        default_factory=lambda: list(OUTPUTS), min_length=1, description="Tables to build."
    )
    min_margin: float = Field(default=0.0, ge=0, description="Pairs: smallest score gap kept ($min_margin).")
    tau: float = Field(default=1.0, gt=0, description="Pairs: soft_label = sigmoid(margin / tau) ($tau).")
    label_threshold: float = Field(
        default=0.5, description="Points: label = reward >= threshold, for KTO ($label_threshold)."
    )
    sql: dict[Literal["pairs", "points", "lists"], str] = Field(
        default_factory=dict,
        description="Replace a built-in SQL file: output -> path of your .sql (relative to the recipe).",
    )


class Recipe(_Section):
    """A build recipe."""

    dataset: str = Field(description="Dataset name: letters, digits, '.', '_', '-'.")
    root: str | None = Field(
        default=None,
        description="Storage root (folder or URI such as s3://bucket/prefix). Default: $PREFMILL_HOME "
        "or ./prefmill-data. A relative folder is relative to the recipe's folder.",
    )
    seed: int = Field(default=0, description="Seed of all randomness (with prompt_id and sample index).")
    shard_size: int = Field(
        default=64, ge=1, le=1_000_000, description="Prompts per shard: the unit of work, caching and resume."
    )
    retry_errors: bool = Field(
        default=False,
        description="When a finished candidates version has failed rows, write a new version that "
        "re-attempts only those (the rest is taken by reference). Same as `prefmill build --retry-errors`.",
    )
    prompts: PromptsConfig = Field(description="Prompt sources.")
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig, description="Response synthesis.")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig, description="Evaluation.")
    instantiation: InstantiationConfig = Field(
        default_factory=InstantiationConfig, description="Instantiation."
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


# -- loading with line numbers ----------------------------------------------------------------


def _node_at(root: yaml.Node | None, loc: Sequence[Any]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (tags of unions are skipped)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    node = value if not isinstance(value, yaml.ScalarNode) or part != loc[-1] else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
    return node


def _section_model(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The recipe model that holds the last field of ``loc``."""
    names = tuple(p for p in loc[:-1] if isinstance(p, str))
    sections: dict[tuple[str, ...], type[BaseModel]] = {
        (): Recipe,
        ("prompts",): PromptsConfig,
        ("prompts", "sources", "file"): FileSource,
        ("prompts", "sources", "arithmetic"): ArithmeticSource,
        ("synthesis",): SynthesisConfig,
        ("evaluation",): EvaluationConfig,
        ("instantiation",): InstantiationConfig,
        ("train",): TrainConfig,
        ("train", "lora"): TrainLoraConfig,
        ("train", "eval"): TrainEvalConfig,
        ("iterate",): IterateConfig,
    }
    return sections.get(names)


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _section_model(error["loc"])
        allowed = [n for n, f in model.model_fields.items() if not f.exclude] if model else []
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown field{hint}; see docs/recipe.md"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message


def _field_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("file", "arithmetic") and out.endswith("]"):
            continue  # discriminator tag pydantic inserts into the location
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_recipe(text: str, *, name: str = "recipe.yaml", base_dir: str | Path = ".") -> Recipe:
    """Validate recipe YAML text. Errors: ``RecipeError('<name> line N: <field>: <problem>')``."""
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{name}{where}: not valid YAML: {problem}") from None
    if data is None:
        raise RecipeError(f"{name}: the recipe is empty; `prefmill init quickstart` writes an example")
    if not isinstance(data, dict):
        raise RecipeError(f"{name} line 1: a recipe is a mapping of fields (dataset, prompts, ...)")
    data["base_dir"] = str(base_dir)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            node = _node_at(tree, loc)
            line = f" line {node.start_mark.line + 1}" if node is not None else ""
            problems.append(f"{name}{line}: {_field_path(loc)}: {_describe(error)}")
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise RecipeError(problems[0] + more) from None


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(
            f"recipe file not found: {file}; `prefmill init quickstart` writes an example"
        ) from None
    except IsADirectoryError:
        raise RecipeError(f"{file} is a folder, not a recipe file") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_recipe(text, name=str(file), base_dir=file.resolve().parent)


# -- reference docs ---------------------------------------------------------------------------


def reference_markdown() -> str:
    """docs/recipe.md, generated from the field docs above."""
    sections: list[tuple[str, type[BaseModel]]] = [
        ("(top level)", Recipe),
        ("prompts", PromptsConfig),
        ("prompts.sources[] with kind: file", FileSource),
        ("prompts.sources[] with kind: arithmetic", ArithmeticSource),
        ("synthesis", SynthesisConfig),
        ("evaluation", EvaluationConfig),
        ("instantiation", InstantiationConfig),
        ("train", TrainConfig),
        ("train.lora", TrainLoraConfig),
        ("train.eval", TrainEvalConfig),
        ("iterate", IterateConfig),
    ]
    lines = [
        "# Recipe reference",
        "",
        "<!-- generated by `python -m prefmill.recipe > docs/recipe.md`; edit the field docs in "
        "src/prefmill/recipe.py instead -->",
        "",
        "A recipe is one YAML file. `prefmill init quickstart` writes a complete example. Unknown fields are "
        "errors, so a misspelt option never passes silently.",
        "",
    ]
    for title, model in sections:
        lines += [
            f"## `{title}`",
            "",
            (model.__doc__ or "").strip(),
            "",
            "| field | type | default | meaning |",
        ]
        lines.append("|---|---|---|---|")
        for fname, info in model.model_fields.items():
            if info.exclude:
                continue
            ann = getattr(info.annotation, "__name__", None) or str(info.annotation)
            ann = ann.replace("prefmill.recipe.", "").replace("typing.", "")
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = repr(info.default_factory())  # type: ignore[call-arg]
            else:
                default = repr(info.default)
            if "Config(" in default:
                default = "see below"
            ann = ann.replace("|", "\\|")
            lines.append(f"| `{fname}` | `{ann}` | `{default}` | {info.description or ''} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown())
