"""The `evaluation` section: judges, aggregation, fidelity."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from prefmill.recipe.base import _Section


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
