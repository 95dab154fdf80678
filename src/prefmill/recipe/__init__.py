"""Build recipes: one YAML file per dataset build, validated by pydantic.

Every field is documented where it is declared; ``docs/recipe.md`` is generated from these docs
(``python -m prefmill.recipe > docs/recipe.md``). Validation errors name the file, the line, the
field and what is wrong, in one line.

The package holds one module per recipe section (``prompts``, ``synthesis``, ``evaluation``,
``instantiation``), the whole ``model``, ``loading`` (YAML with line numbers) and ``reference``
(the docs generator); the names below are its public face.
"""

from prefmill.recipe.base import OUTPUTS, STAGES
from prefmill.recipe.evaluation import (
    DEFAULT_CRITERIA,
    DEFAULT_PRINCIPLES,
    JUDGE_MODELS,
    ArithmeticJudge,
    CodeVerifier,
    CritiqueReviseJudge,
    EvaluationConfig,
    FidelityConfig,
    FormatVerifier,
    HeuristicJudge,
    HumanJudge,
    JudgeConfig,
    LLMJudge,
    MathVerifier,
    MetaJudge,
    RewardModelJudge,
)
from prefmill.recipe.instantiation import InstantiationConfig, SelectionConfig
from prefmill.recipe.loading import load_recipe, parse_recipe
from prefmill.recipe.model import ExportConfig, Price, Recipe, file_digest
from prefmill.recipe.prompts import ArithmeticSource, FileSource, PromptsConfig, PromptSource
from prefmill.recipe.reference import reference_markdown
from prefmill.recipe.synthesis import (
    STRATEGIES,
    BestOfNConfig,
    DiversityConfig,
    OfflineSource,
    PolicyConfig,
    ResolvedPolicy,
    SynthesisConfig,
    VerbalizedConfig,
)

__all__ = [
    "DEFAULT_CRITERIA", "DEFAULT_PRINCIPLES", "JUDGE_MODELS", "OUTPUTS", "STAGES", "STRATEGIES",
    "ArithmeticJudge", "ArithmeticSource", "BestOfNConfig", "CodeVerifier", "CritiqueReviseJudge",
    "DiversityConfig", "EvaluationConfig", "ExportConfig", "FidelityConfig", "FileSource",
    "FormatVerifier", "HeuristicJudge", "HumanJudge", "InstantiationConfig", "JudgeConfig", "LLMJudge",
    "MathVerifier", "MetaJudge", "OfflineSource", "PolicyConfig", "Price", "PromptSource",
    "PromptsConfig", "Recipe", "ResolvedPolicy", "RewardModelJudge", "SelectionConfig",
    "SynthesisConfig", "VerbalizedConfig", "file_digest", "load_recipe", "parse_recipe",
    "reference_markdown",
]  # fmt: skip
