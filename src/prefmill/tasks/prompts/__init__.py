"""Prompts stage: load prompt sources, generate arithmetic problems, combine and de-duplicate.

Every function here is a pure function returning Arrow tables (``prompts`` and ``prompts_rejected``).
"""

from prefmill.tasks.prompts.arithmetic import arithmetic_problems
from prefmill.tasks.prompts.build import PROMPTS_CODE_VERSION, combine
from prefmill.tasks.prompts.loaders import FORMATS, load_file

__all__ = ["FORMATS", "PROMPTS_CODE_VERSION", "arithmetic_problems", "combine", "load_file"]
