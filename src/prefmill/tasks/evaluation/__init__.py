"""Evaluation stage: verifiers and heuristics that turn candidates into judgments.

Every function here is a pure function over Arrow tables; the LLM judges are added by the flow.
"""

from prefmill.tasks.evaluation.extract import extract_final_number, normalize_number, numbers_equal
from prefmill.tasks.evaluation.heuristic import heuristic_judge, heuristic_scores
from prefmill.tasks.evaluation.judge import EVALUATION_CODE_VERSION, KNOWN_JUDGES, judge_shard
from prefmill.tasks.evaluation.verifiers import arithmetic_verifier

__all__ = [
    "EVALUATION_CODE_VERSION",
    "KNOWN_JUDGES",
    "arithmetic_verifier",
    "extract_final_number",
    "heuristic_judge",
    "heuristic_scores",
    "judge_shard",
    "normalize_number",
    "numbers_equal",
]
