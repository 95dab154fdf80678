"""Build recipes: one YAML file per dataset build, validated by pydantic.

Every field is documented where it is declared; ``docs/recipe.md`` is generated from these docs
(``python -m prefmill.recipe > docs/recipe.md``). Validation errors name the file, the line, the
field and what is wrong, in one line.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


def _check_ladder(name: str, v: float | list[float] | None, low: float, high: float, low_open: bool) -> None:
    if v is None:
        return
    values = v if isinstance(v, list) else [v]
    bad = [t for t in values if (t <= low if low_open else t < low) or t > high]
    if not values or bad:
        bound = f"in ({low:g}, {high:g}]" if low_open else f"between {low:g} and {high:g}"
        raise ValueError(f"{name} must be {bound} (a non-empty list for a ladder)")


def _ladder(v: float | list[float]) -> list[float]:
    return [float(t) for t in v] if isinstance(v, list) else [float(v)]


STRATEGIES = ("sample", "best_of_n", "verbalized")


class BestOfNConfig(_Section):
    """Best-of-n / rejection sampling (RS-DPO): sample in rounds of `k` until a verifier accepts."""

    budget: int = Field(
        default=8, ge=1, le=4096, description="Most samples drawn per prompt (all of them are kept)."
    )
    accept: Literal["arithmetic"] = Field(
        default="arithmetic",
        description="Verifier deciding acceptance: `arithmetic` (final number equals the prompt's "
        "reference). Prompts without a reference get one round of `k` samples, `accepted` null.",
    )
    min_accepted: int = Field(
        default=1, ge=1, le=4096, description="Stop sampling a prompt once this many samples are accepted."
    )


class VerbalizedConfig(_Section):
    """Verbalized sampling: one call asks for `n` distinct responses with their probabilities."""

    n: int = Field(default=5, ge=1, le=64, description="Responses asked for in one call.")
    template: str | None = Field(
        default=None,
        description="Instruction appended to the user's last message; `{n}` is replaced by `n`. "
        "Default: the built-in template asking for `<response><text>...</text>"
        "<probability>...</probability></response>` blocks.",
    )


class PolicyConfig(_Section):
    """One sampling policy of `synthesis.policies`; an unset field takes the `synthesis` section's value."""

    name: str | None = Field(
        default=None,
        description="Name stored in the `policy` column and mixed into the seeds; default: the engine spec. "
        "Must be unique within `policies`.",
    )
    engine: str | None = Field(default=None, description="Engine spec, as `synthesis.engine`.")
    k: int | None = Field(default=None, ge=1, le=256, description="Samples (or calls) per prompt.")
    temperature: float | list[float] | None = Field(default=None, description="Temperature or ladder.")
    top_p: float | list[float] | None = Field(default=None, description="top_p or ladder.")
    max_new_tokens: int | None = Field(default=None, ge=1, le=32768, description="Longest response.")
    batch_size: int | None = Field(default=None, ge=1, le=4096, description="Sequences per engine call.")
    strategy: Literal["sample", "best_of_n", "verbalized"] | None = Field(
        default=None, description="`sample`, `best_of_n` or `verbalized` (see `synthesis.strategy`)."
    )

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, v: float | list[float] | None) -> float | list[float] | None:
        _check_ladder("temperature", v, 0.0, 5.0, False)
        return v

    @field_validator("top_p")
    @classmethod
    def _top_ps(cls, v: float | list[float] | None) -> float | list[float] | None:
        _check_ladder("top_p", v, 0.0, 1.0, True)
        return v


class OfflineSource(_Section):
    """Existing responses imported as candidates (`origin = 'offline'`)."""

    path: str = Field(
        description="A JSONL, CSV or Parquet file, or an HF dataset folder (`save_to_disk`) or a folder of "
        "Parquet files; relative to the recipe's folder."
    )
    format: Literal["jsonl", "csv", "parquet", "hf"] | None = Field(
        default=None, description="File format; by default taken from the suffix (a folder is `hf`)."
    )
    prompt_field: str = Field(default="prompt", description="Column with the prompt text.")
    messages_field: str = Field(
        default="messages", description="Column with the prompt as a chat, instead of text."
    )
    response_field: str = Field(
        default="response",
        description="Column with the response (long format: one row per response) or a list of "
        "responses (wide format).",
    )
    model_field: str = Field(
        default="model", description="Optional column naming the model that wrote the response."
    )
    rating_field: str = Field(
        default="rating",
        description="Optional column with a numeric rating (a list in wide format), kept as `rating`.",
    )
    generator: str | None = Field(
        default=None,
        description="`generator` of the imported rows when there is no model column; default "
        "`offline:<file name>`.",
    )
    data_policy: str | None = Field(
        default=None,
        description="Engine spec of the model that wrote these responses (π_data): when set, each response "
        "is scored under it and the sum log-prob stored in `logprob`.",
    )
    on_unmatched: Literal["error", "skip"] = Field(
        default="error",
        description="A row whose prompt is not in the prompts table: `error` stops the build naming the "
        "file and line; `skip` drops it and counts it in the manifest stat `offline_unmatched`.",
    )


class DiversityConfig(_Section):
    """Near-duplicate marking and per-prompt diversity statistics (mode-collapse check)."""

    near_duplicate_threshold: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Two candidates of one prompt whose embedding cosine is at least this are "
        "near-duplicates: the later one gets `duplicate_of` = the earlier one's candidate_id.",
    )
    low_spread: float = Field(
        default=0.05,
        ge=0,
        le=2,
        description="A prompt whose embedding spread (mean pairwise cosine distance) is below this "
        "counts as collapsed in the manifest stat `low_diversity_prompts`.",
    )


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
    top_p: float | list[float] = Field(
        default=0.95, description="Nucleus sampling threshold, or a ladder like `temperature`."
    )
    max_new_tokens: int = Field(default=128, ge=1, le=32768, description="Longest response in tokens.")
    batch_size: int = Field(
        default=64, ge=1, le=4096, description="Sequences per engine call (speed only, not the output)."
    )
    strategy: Literal["sample", "best_of_n", "verbalized"] = Field(
        default="sample",
        description="`sample`: k samples per prompt. `best_of_n`: rejection sampling in rounds of k up to "
        "`best_of_n.budget` (see below). `verbalized`: k calls per prompt, each asking for "
        "`verbalized.n` responses with probabilities.",
    )
    best_of_n: BestOfNConfig = Field(default_factory=BestOfNConfig, description="Best-of-n settings.")
    verbalized: VerbalizedConfig = Field(
        default_factory=VerbalizedConfig, description="Verbalized sampling settings."
    )
    policies: list[PolicyConfig] = Field(
        default_factory=list,
        description="Several sampling policies in one build (e.g. two models); each entry overrides the "
        "fields above. Empty: one policy made of the fields above.",
    )
    online: bool = Field(
        default=True, description="Generate with the policies; `false` builds candidates from `offline` only."
    )
    offline: list[OfflineSource] = Field(
        default_factory=list, description="Existing responses to import as candidates."
    )
    policy_engine: str | None = Field(
        default=None,
        description="Target policy π_θ for WPO-style reweighting: every successful candidate is scored "
        "under it and its sum log-prob stored in `policy_logprob`.",
    )
    diversity: DiversityConfig | None = Field(
        default=None,
        description="Mark near-duplicates and report distinct-n / embedding spread per prompt "
        "(all-MiniLM-L6-v2); null: off.",
    )

    @field_validator("temperature")
    @classmethod
    def _temperatures(cls, v: float | list[float]) -> float | list[float]:
        _check_ladder("temperatures", v, 0.0, 5.0, False)
        return v

    @field_validator("top_p")
    @classmethod
    def _top_ps(cls, v: float | list[float]) -> float | list[float]:
        _check_ladder("top_p", v, 0.0, 1.0, True)
        return v

    @model_validator(mode="after")
    def _sources(self) -> SynthesisConfig:
        if not self.online and not self.offline:
            raise ValueError("online is false and there are no offline sources: nothing to synthesize")
        names = [p.name or p.engine or self.engine for p in self.policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policies: name {dupes[0]!r} is used twice; give each policy a distinct `name`")
        return self

    @property
    def temperatures(self) -> list[float]:
        return _ladder(self.temperature)

    @property
    def top_ps(self) -> list[float]:
        return _ladder(self.top_p)

    def resolved_policies(self) -> list[ResolvedPolicy]:
        """The online policies with every field filled in (none when ``online`` is false).

        With no ``policies`` list the one policy has ``name`` None: its seeds and ids are those of a
        single-engine build (``seed_for(seed, prompt_id, i)``)."""
        if not self.online:
            return []
        if not self.policies:
            return [
                ResolvedPolicy(
                    None, self.engine, self.k, self.temperatures, self.top_ps, self.max_new_tokens,
                    self.batch_size, self.strategy,
                )
            ]  # fmt: skip
        out = []
        for p in self.policies:
            engine = p.engine or self.engine
            out.append(
                ResolvedPolicy(
                    p.name or engine,
                    engine,
                    p.k or self.k,
                    _ladder(p.temperature) if p.temperature is not None else self.temperatures,
                    _ladder(p.top_p) if p.top_p is not None else self.top_ps,
                    p.max_new_tokens or self.max_new_tokens,
                    p.batch_size or self.batch_size,
                    p.strategy or self.strategy,
                )
            )
        return out

    def engine_specs(self) -> list[str]:
        """Every engine spec the section names (policies, data policies, the target policy)."""
        specs = [p.engine for p in self.resolved_policies()]
        specs += [o.data_policy for o in self.offline if o.data_policy]
        if self.policy_engine:
            specs.append(self.policy_engine)
        return specs


@dataclass(frozen=True)
class ResolvedPolicy:
    """An online policy with its fields filled in from the synthesis section."""

    name: str | None
    engine: str
    k: int
    temperatures: list[float]
    top_ps: list[float]
    max_new_tokens: int
    batch_size: int
    strategy: str


class ArithmeticJudge(_Section):
    """Final-answer verifier for prompts with a numeric `reference` (score 1 or 0)."""

    kind: Literal["arithmetic"] = Field(description="`arithmetic`.")


class HeuristicJudge(_Section):
    """Length-normalised quality heuristic for prompts without a reference (smoke tests, cold starts)."""

    kind: Literal["heuristic"] = Field(description="`heuristic`.")


class MathVerifier(_Section):
    """Final-answer verifier for math prompts: extracts the final answer of a response (`\\boxed{}`,
    `#### n`, "the answer is n", the last `= n`, else the last number; integers, decimals, fractions,
    thousands commas, units and `%` are understood) and compares it with the prompt's `reference` as exact
    rationals, or within the tolerances below. Score 1 or 0; prompts without a reference and prompts
    whose reference is a code test spec are skipped."""

    kind: Literal["math"] = Field(description="`math`.")
    name: str = Field(default="math-verifier", min_length=1, description="Judge name in `judgments`.")
    rel_tol: float = Field(
        default=0.0, ge=0, le=1, description="Relative tolerance (`1e-6` accepts 3.1415927 for 3.14159265)."
    )
    abs_tol: float = Field(default=0.0, ge=0, description="Absolute tolerance.")
    percent_as_fraction: bool = Field(
        default=False, description="Also accept `50%` for a reference of 0.5 (and 0.5 for `50%`)."
    )


class CodeVerifier(_Section):
    """Runs the code in a response against the tests in the prompt's `reference` in a sandboxed
    subprocess (see the user guide: time, memory, process and file-size limits, no network, a private
    temporary folder). `reference` is a JSON object: `{"tests": "<python asserts>"}` (run after the
    candidate's code) or `{"cases": [{"input": "...", "output": "..."}]}` (stdin/stdout). Score = share of
    test cases passed; prompts whose reference is not such an object are skipped."""

    kind: Literal["code"] = Field(description="`code`.")
    name: str = Field(default="code-verifier", min_length=1, description="Judge name in `judgments`.")
    timeout_s: float = Field(default=5.0, gt=0, le=600, description="Wall-clock limit per test case.")
    cpu_s: int = Field(default=5, ge=1, le=600, description="CPU-time limit per test case (RLIMIT_CPU).")
    memory_mb: int = Field(
        default=512, ge=64, le=65536, description="Address-space limit per test case (RLIMIT_AS)."
    )
    max_processes: int = Field(
        default=16, ge=1, le=4096, description="Processes / threads the candidate may run (RLIMIT_NPROC)."
    )
    max_output_kb: int = Field(
        default=1024, ge=1, le=1_048_576, description="Largest file or output the candidate may write."
    )
    parallel: int = Field(default=2, ge=1, le=64, description="Test cases run at the same time.")


class FormatVerifier(_Section):
    """Checks the form of every response (with or without a reference): a JSON schema, a regular
    expression, length limits. Score 1 when every configured check passes, else 0, with the failed
    checks in `rationale`."""

    kind: Literal["format"] = Field(description="`format`.")
    name: str = Field(
        default="format-verifier",
        min_length=1,
        description="Judge name in `judgments`; give each format verifier its own name.",
    )
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="The response (or its first ```json block) must be JSON valid against this JSON "
        "Schema (a mapping; `{}` only asks for valid JSON).",
    )
    regex: str | None = Field(default=None, description="The response must match (Python `re.search`).")
    fullmatch: bool = Field(default=False, description="`regex` must match the whole (stripped) response.")
    min_chars: int | None = Field(default=None, ge=0, description="Fewest characters.")
    max_chars: int | None = Field(default=None, ge=0, description="Most characters.")
    min_words: int | None = Field(default=None, ge=0, description="Fewest words (whitespace-separated).")
    max_words: int | None = Field(default=None, ge=0, description="Most words.")

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _some_check(self) -> FormatVerifier:
        limits = (self.min_chars, self.max_chars, self.min_words, self.max_words)
        if self.json_schema is None and self.regex is None and all(v is None for v in limits):
            raise ValueError("a format verifier needs a check: json_schema, regex, or min/max_chars/words")
        if self.json_schema is not None:
            import jsonschema

            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
        return self

    def __hash__(self) -> int:  # json_schema is a dict: hash the canonical JSON of the whole config
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))


class RewardModelJudge(_Section):
    """A transformers sequence-classification model scores (prompt, response); kind `reward_model`.
    A one-label head gives its logit (or its sigmoid), a two-label head the probability of label 1.
    The model is loaded once per process."""

    kind: Literal["reward_model"] = Field(description="`reward_model`.")
    model: str = Field(description="Folder of a transformers sequence-classification model.")
    name: str | None = Field(default=None, description="Judge name (default `reward-model:<folder name>`).")
    batch_size: int = Field(default=16, ge=1, le=4096, description="Sequences per forward pass.")
    max_length: int = Field(default=1024, ge=8, le=131072, description="Longest input in tokens (truncated).")
    sigmoid: bool = Field(default=False, description="Map a one-label head's logit into [0, 1].")
    chat_template: bool = Field(
        default=True,
        description="Format (prompt, response) with the tokenizer's chat template when it has one.",
    )


class HumanJudge(_Section):
    """Human verdicts imported from a CSV or JSONL file as kind `human` rows (judge `human:<annotator>`).
    A row holds `annotator` and either `candidate_id` + `score` (point) or `candidate_id` +
    `other_candidate_id` + `prefers_first` (pair); optional `criterion`, `rationale`."""

    kind: Literal["human"] = Field(description="`human`.")
    path: str = Field(description="The verdicts file; relative paths are relative to the recipe's folder.")
    format: Literal["jsonl", "csv"] | None = Field(
        default=None, description="File format; by default taken from the suffix."
    )


#: The description of the `structured_output` field of the judges that write verdicts (llm, meta).
_STRUCTURED_OUTPUT = (
    "Constrain the verdict to its JSON schema where the engine can (transformers, vllm, openai with "
    "`structured_output=true`); otherwise the tolerant parser reads free text."
)


class LLMJudge(_Section):
    """A judge model (any engine) that scores candidates: `point` (one score on a stated scale),
    `pair` (which of two responses is better, both orders), or `rubric` (named criteria scored
    separately; a prompt's own `rubric` replaces them)."""

    kind: Literal["llm"] = Field(description="`llm`.")
    name: str | None = Field(
        default=None,
        description="The `judge` column of its rows. Default: `llm-<mode>:<engine>` "
        "(e.g. `llm-point:transformers:smollm2`).",
    )
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    mode: Literal["point", "pair", "rubric"] = Field(default="point", description="What it is asked.")
    min_score: int = Field(default=1, description="Point / rubric: lowest score of the stated scale.")
    max_score: int = Field(
        default=10, description="Point / rubric: highest score; stored `score` is scaled to [0, 1]."
    )
    criteria: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CRITERIA),
        description="Rubric mode: criterion name -> what it means, each scored separately.",
    )
    swap: bool = Field(
        default=True, description="Pair mode: judge both orders (ab and ba) to expose position bias."
    )
    max_pairs_per_prompt: int | None = Field(
        default=None, ge=1, description="Pair mode: judge at most this many candidate pairs per prompt."
    )
    template: str | None = Field(
        default=None,
        description="Jinja template of the judge prompt replacing the built-in one (path, relative to "
        "the recipe); see src/prefmill/templates/judges/ for the variables.",
    )
    temperature: float = Field(default=0.0, ge=0, le=5, description="Judge sampling temperature (0: greedy).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest verdict in tokens.")
    repair: bool = Field(
        default=True, description="Ask once more, with a repair prompt, when a verdict cannot be parsed."
    )
    structured_output: bool = Field(default=True, description=_STRUCTURED_OUTPUT)
    seed: int = Field(default=0, description="Seed of the judge's sampling (with the judged ids).")

    @field_validator("criteria")
    @classmethod
    def _criteria(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("criteria must name at least one criterion")
        return v

    @property
    def judge_name(self) -> str:
        return self.name or f"llm-{self.mode}:{self.engine}"


class MetaJudge(_Section):
    """A judge model asked to resolve only the candidates on which the other judges' scores (scaled
    to [0, 1]) spread by more than `threshold`; it runs after them, on the same shard."""

    kind: Literal["meta"] = Field(description="`meta`.")
    name: str = Field(default="meta-judge", description="The `judge` column of its rows.")
    engine: str = Field(default="transformers:smollm2", description="Judge engine as `kind:model`.")
    threshold: float = Field(
        default=0.5, ge=0, le=1, description="Resolve a candidate when max - min of the scores exceeds this."
    )
    judges: list[str] = Field(
        default_factory=list, description="Judge names whose scores count (default: every point-wise judge)."
    )
    min_score: int = Field(default=1, description="Lowest score of the stated scale.")
    max_score: int = Field(default=10, description="Highest score; stored `score` is scaled to [0, 1].")
    template: str | None = Field(default=None, description="Jinja template replacing the built-in one.")
    temperature: float = Field(default=0.0, ge=0, le=5, description="Sampling temperature (0: greedy).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest verdict in tokens.")
    repair: bool = Field(default=True, description="Ask once more when a verdict cannot be parsed.")
    structured_output: bool = Field(default=True, description=_STRUCTURED_OUTPUT)
    seed: int = Field(default=0, description="Seed of the judge's sampling.")

    @property
    def judge_name(self) -> str:
        return self.name


class CritiqueReviseJudge(_Section):
    """Constitutional critique-revise: a model critiques each candidate against written principles
    and rewrites it; each revision becomes a new candidate (`origin: revision`, `parent_id` = the
    original) that the other judges then judge with the originals."""

    kind: Literal["critique_revise"] = Field(description="`critique_revise`.")
    name: str = Field(default="critique-revise", description="Name recorded in the revisions' sampling.")
    engine: str = Field(default="transformers:smollm2", description="Engine as `kind:model`.")
    principles: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PRINCIPLES),
        min_length=1,
        description="The written principles the critique checks the response against.",
    )
    critique_template: str | None = Field(default=None, description="Jinja template of the critique prompt.")
    revise_template: str | None = Field(default=None, description="Jinja template of the revision prompt.")
    temperature: float = Field(default=0.0, ge=0, le=5, description="Sampling temperature (0: greedy).")
    max_new_tokens: int = Field(default=256, ge=1, le=32768, description="Longest critique / revision.")
    seed: int = Field(default=0, description="Seed of the sampling.")

    @property
    def judge_name(self) -> str:
        return self.name


DEFAULT_CRITERIA: dict[str, str] = {
    "helpfulness": "does it answer the request fully and correctly",
    "harmlessness": "does it avoid harmful, unsafe or offensive content",
    "honesty": "is it truthful, without made-up facts, and clear about uncertainty",
    "conciseness": "is it as short as it can be without losing content",
}
DEFAULT_PRINCIPLES: tuple[str, ...] = (
    "The response answers the user's actual request correctly and completely.",
    "The response contains no harmful, unethical, dangerous or illegal content.",
    "The response states no made-up facts and admits uncertainty.",
    "The response is clear and no longer than needed.",
)

# One class per adjudicator kind; `kind` picks it. A bare string in `judges` is short for {kind: ...}.
JudgeConfig = Annotated[
    ArithmeticJudge
    | HeuristicJudge
    | MathVerifier
    | CodeVerifier
    | FormatVerifier
    | RewardModelJudge
    | HumanJudge
    | LLMJudge
    | MetaJudge
    | CritiqueReviseJudge,
    Field(discriminator="kind"),
]
JUDGE_MODELS: dict[str, type[BaseModel]] = {
    "arithmetic": ArithmeticJudge,
    "heuristic": HeuristicJudge,
    "math": MathVerifier,
    "code": CodeVerifier,
    "format": FormatVerifier,
    "reward_model": RewardModelJudge,
    "human": HumanJudge,
    "llm": LLMJudge,
    "meta": MetaJudge,
    "critique_revise": CritiqueReviseJudge,
}


class FidelityConfig(_Section):
    """Checks of the judges that can fail the build before instantiation (each applies to every
    judge it can be measured for; unset means not checked), and an optional calibration file."""

    min_position_consistency: float | None = Field(
        default=None, ge=0, le=1, description="Pair judges: smallest share of pairs whose two orders agree."
    )
    max_parse_failure_rate: float | None = Field(
        default=None, ge=0, le=1, description="Largest share of a judge's rows with `parse_error` set."
    )
    min_gold_agreement: float | None = Field(
        default=None, ge=0, le=1, description="Smallest agreement with gold (verifier, human, calibration)."
    )
    max_length_correlation: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Largest absolute Spearman correlation of a judge's raw scores with length.",
    )
    gold_judges: list[str] | None = Field(
        default=None,
        description="Judge names whose verdicts are gold. Default: every verifier but `heuristic`, and "
        "human verdicts.",
    )
    calibration: str | None = Field(
        default=None,
        description="JSONL of labelled pairs {prompt, chosen, rejected} (relative to the recipe): every "
        "LLM judge also judges these, and its accuracy on them is reported as gold agreement.",
    )


class EvaluationConfig(_Section):
    """Stage 2: preference evaluation (adjudicators write rows of `judgments`)."""

    judges: list[JudgeConfig] = Field(
        default_factory=lambda: [ArithmeticJudge(kind="arithmetic"), HeuristicJudge(kind="heuristic")],
        min_length=1,
        description="Adjudicators, each a mapping with `kind` and its options (see the judge sections "
        "below); a bare name such as `arithmetic` is short for `{kind: arithmetic}`.",
    )

    aggregation: Literal["mean", "median", "vote"] = Field(
        default="mean",
        description="How instantiation combines a candidate's judges into one score (candidate_scores in "
        "scores.sql): `mean` of the per-judge scores, their `median`, or a majority `vote` of binary "
        "verdicts (a judge votes yes at score >= 0.5; a tie gives 0.5).",
    )

    fidelity: FidelityConfig = Field(
        default_factory=FidelityConfig,
        description="Fidelity thresholds that fail the build, and a calibration file (see below).",
    )

    @field_validator("judges", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"kind": j} if isinstance(j, str) else j for j in v]
        return v

    @property
    def judge_kinds(self) -> list[str]:
        return [j.kind for j in self.judges]


class SelectionConfig(_Section):
    """Selection filters over pairs (prefmill/sql/selection.sql; `min_margin` is the explicit margin).
    Every filter that removes rows reports how many and why in the pairs version's manifest
    (`stats.removed`). A field left null switches its filter off."""

    min_implicit_margin: float | None = Field(
        default=None,
        description="Implicit margin: keep pairs whose policy log-prob gap (per token, chosen minus "
        "rejected) is at least this; with `min_margin` both are required (BeeS). Pairs without "
        "log-probs are dropped while it is set ($min_implicit_margin).",
    )
    min_spread: float | None = Field(
        default=None, ge=0, description="Ensemble spread: keep items whose judge spread is >= this."
    )
    max_spread: float | None = Field(
        default=None, ge=0, description="Ensemble spread: keep items whose judge spread is <= this."
    )
    drop_swap_inconsistent: bool = Field(
        default=True,
        description="Drop pairs a pair-wise judge preferred differently when the two responses swapped "
        "places ($drop_swap_inconsistent).",
    )
    min_entropy: float | None = Field(
        default=None, ge=0, le=1, description="Judge entropy band (bits, 0..1): lower bound."
    )
    max_entropy: float | None = Field(
        default=None, ge=0, le=1, description="Judge entropy band (bits, 0..1): upper bound."
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
    sql: dict[Literal["pairs", "points", "lists", "selection"], str] = Field(
        default_factory=dict,
        description="Replace a built-in SQL file: output (or `selection`) -> path of your .sql "
        "(relative to the recipe).",
    )
    pair_strategies: list[Literal["best_vs_worst", "all_pairs", "best_vs_random", "pareto", "diverse"]] = (
        Field(
            default_factory=lambda: ["best_vs_worst"],
            min_length=1,
            description="Pairs: how pairs are made ($strategies): `best_vs_worst`, `all_pairs` (every "
            "ordered pair with a score gap), `best_vs_random` (seeded by the recipe seed), `pareto` "
            "(no worse on every criterion, better on one), `diverse` (DivPO: the most distinct good "
            "response chosen, by all-MiniLM-L6-v2 embeddings).",
        )
    )
    weight_clip: float = Field(
        default=5.0,
        ge=1,
        description="Pairs: WPO-style weights are clipped to [1/weight_clip, weight_clip] ($weight_clip).",
    )
    diversity_quantile: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Pairs, `diverse`: candidates scoring >= this quantile of their group count as good "
        "($diversity_quantile).",
    )
    label_rule: Literal["threshold", "quantile"] = Field(
        default="threshold",
        description="Points: KTO label by `threshold` (reward >= label_threshold) or `quantile` (top "
        "label_quantile of each prompt desirable, bottom one undesirable, the middle left out).",
    )
    label_quantile: float = Field(
        default=0.25, gt=0, le=0.5, description="Points: the quantile of `label_rule: quantile`."
    )
    criterion_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weighted scalarisation: {criterion: weight}; candidates scored on every listed "
        "criterion get an extra criterion `weighted` with score = sum(weight * score).",
    )
    selection: SelectionConfig = Field(
        default_factory=SelectionConfig, description="Selection filters over pairs (and spread on points)."
    )


class ExportConfig(_Section):
    """One export written at the end of `prefmill build` (same as `prefmill export`): a folder with
    the rows in a training library's format and a dataset card (README.md)."""

    format: Literal["trl-preference", "trl-unpaired", "trl-prompt-only", "trl-reward", "rows"] = Field(
        description="Columns: `trl-preference` (prompt/chosen/rejected, from pairs), `trl-unpaired` "
        "(prompt/completion/label for KTO, from points), `trl-prompt-only` (prompt + reference for "
        "GRPO/RLOO reward functions, from prompts), `trl-reward` (implicit-prompt chosen/rejected + "
        "margin, from pairs), `rows` (the table as it is)."
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
    conversational: bool = Field(
        default=False, description="TRL's conversational format (lists of {role, content}) instead of text."
    )
    where: str | None = Field(
        default=None, description="SQL condition on the table's rows, e.g. \"criterion = 'overall'\"."
    )
    hub_repo: str | None = Field(
        default=None, description="Also push_to_hub to this dataset repo id (token from $HF_TOKEN)."
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
    seed: int = Field(default=0, description="Seed of all randomness (with prompt_id and sample index).")
    shard_size: int = Field(
        default=64, ge=1, le=1_000_000, description="Prompts per shard: the unit of work, caching and resume."
    )
    retry_errors: bool = Field(
        default=False,
        description="When a finished candidates version has failed rows, write a new version that "
        "re-attempts only those (the rest is taken by reference). Same as `prefmill build --retry-errors`.",
    )
    task_runner: Literal["local", "dask", "ray"] = Field(
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
        "from it; models without an entry have no cost. Local engines cost nothing here.",
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
        ("synthesis", "best_of_n"): BestOfNConfig,
        ("synthesis", "verbalized"): VerbalizedConfig,
        ("synthesis", "policies"): PolicyConfig,
        ("synthesis", "offline"): OfflineSource,
        ("synthesis", "diversity"): DiversityConfig,
        ("evaluation",): EvaluationConfig,
        ("evaluation", "fidelity"): FidelityConfig,
        ("instantiation",): InstantiationConfig,
        **{("evaluation", "judges", kind): model for kind, model in JUDGE_MODELS.items()},
        ("instantiation", "selection"): SelectionConfig,
        ("export",): ExportConfig,
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


_TAGS = frozenset({"file", "arithmetic", *JUDGE_MODELS})


def _field_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS and out.endswith("]"):
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
        ("synthesis.policies[]", PolicyConfig),
        ("synthesis.offline[]", OfflineSource),
        ("synthesis.best_of_n", BestOfNConfig),
        ("synthesis.verbalized", VerbalizedConfig),
        ("synthesis.diversity", DiversityConfig),
        ("evaluation", EvaluationConfig),
        *((f"evaluation.judges[] with kind: {kind}", model) for kind, model in JUDGE_MODELS.items()),
        ("evaluation.fidelity", FidelityConfig),
        ("instantiation", InstantiationConfig),
        ("instantiation.selection", SelectionConfig),
        ("export[]", ExportConfig),
        ("prices.<model>", Price),
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
            inspect.cleandoc(model.__doc__ or ""),
            "",
            "| field | type | default | meaning |",
        ]
        lines.append("|---|---|---|---|")
        for fname, info in model.model_fields.items():
            if info.exclude:
                continue
            ann = getattr(info.annotation, "__name__", None) or str(info.annotation)
            if ann == "Literal":
                ann = str(info.annotation)
            ann = ann.replace("prefmill.recipe.", "").replace("__main__.", "").replace("typing.", "")
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
