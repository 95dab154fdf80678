"""Judge kind `code`: runs the code of a response against the tests of the prompt's reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from prefmill.tasks.evaluation.judges.base import JudgeKind, JudgeSection, JudgeTraits, with_reference

if TYPE_CHECKING:
    import pyarrow as pa


class CodeVerifier(JudgeSection):
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


def run(config: CodeVerifier, cands: pa.Table) -> pa.Table:
    from prefmill.tasks.evaluation.code import code_verifier

    return code_verifier(config, with_reference(cands))


KIND = JudgeKind(
    config=CodeVerifier,
    traits=JudgeTraits(
        summary="runs the response's Python code against the reference's tests in a sandbox",
        row_kind="verifier",
        gold=True,
        order=40,
    ),
    run=run,
)
