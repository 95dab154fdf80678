"""Build recipes: one YAML file per dataset build, validated by pydantic.

Every field is documented where it is declared; ``docs/recipe.md`` is generated from these docs
(``python -m prefmill.recipe > docs/recipe.md``). Validation errors name the file, the line, the
field and what is wrong, in one line.

The package holds one module per recipe section it composes (``prompts``, ``synthesis``,
``evaluation``), the whole ``model``, ``loading`` (YAML with line numbers) and ``reference`` (the docs
generator); the names below are its public face. They are imported on first use, so
that importing the package loads no section and no kind. The recipe sits above the task code: the
configs the tasks read are declared next to them (the judge and prompt-source kinds build theirs on
``prefmill.section``) and only re-exported here; no task module imports the recipe.
"""

from __future__ import annotations

from prefmill.lazy import lazy_exports
from prefmill.recipe.base import OUTPUTS as OUTPUTS
from prefmill.recipe.base import STAGES as STAGES

_HOMES: dict[str, tuple[str, ...]] = {
    "evaluation": (
        "DEFAULT_CRITERIA", "DEFAULT_PRINCIPLES", "JUDGE_MODELS", "ArithmeticJudge", "CodeVerifier",
        "CritiqueReviseJudge", "EvaluationConfig", "FidelityConfig", "FormatVerifier", "HeuristicJudge",
        "HumanJudge", "JudgeConfig", "LLMJudge", "MathVerifier", "MetaJudge", "RewardModelJudge",
    ),
    "loading": ("load_recipe", "parse_recipe"),
    "model": ("ExportConfig", "Price", "Recipe", "file_digest"),
    "prompts": ("ArithmeticSource", "FileSource", "PromptsConfig", "PromptSource"),
    "reference": ("reference_markdown",),
    "synthesis": (
        "STRATEGIES", "BestOfNConfig", "DiversityConfig", "OfflineSource", "PolicyConfig",
        "ResolvedPolicy", "SynthesisConfig", "VerbalizedConfig",
    ),
    # declared next to the task code that reads them
    "prefmill.tasks.instantiation.config": ("InstantiationConfig", "SelectionConfig"),
    "prefmill.tasks.steps.config": ("StepsConfig",),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(["OUTPUTS", "STAGES", *_MODULE_OF])


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF, also=("OUTPUTS", "STAGES"))
