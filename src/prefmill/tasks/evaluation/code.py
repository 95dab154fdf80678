"""The ``code`` verifier: run a response's Python code against the prompt's tests in a sandbox.

Reference format (the prompt's ``reference``, a JSON object):

* ``{"tests": "assert add(2, 3) == 5\\nassert add(-1, 1) == 0"}`` -- Python run after the candidate's code
  in the same namespace (``__name__`` is ``"solution"``, so a ``__main__`` block does not run); the
  case passes when it runs to the end. A list of strings is several cases.
* ``{"cases": [{"input": "2 3\\n", "output": "5"}, ...]}`` -- stdin/stdout cases: the candidate's code
  runs as a program (``__name__ == "__main__"``) with ``input`` on stdin; the case passes when its
  stdout equals ``output`` up to trailing whitespace on each line and trailing blank lines.

Score = passed cases / all cases. ``rationale`` names the first failure and its reason; ``raw`` holds
every case's status and the sandbox mode as JSON. A reference that is not such an object is not a code
prompt: the verifier skips it (the math verifier takes it instead).

Code extraction: the longest fenced block tagged ``python``/``py``/``python3`` (else the longest
untagged block, else the whole response when it compiles as Python).

The sandbox, per test case: a new temporary folder (cwd, ``HOME`` and ``TMPDIR``), ``python -I`` (no
user site, no ``PYTHON*`` variables), stdin from a file, stdout/stderr into files read back truncated,
and the limits ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE`` and
``RLIMIT_CORE=0``, plus a wall-clock timeout after which the whole process tree is killed. Two layers
keep it in:

* ``isolated`` mode (root with util-linux ``unshare`` and ``setpriv``, probed once per process): a new
  network namespace (no interface but a down loopback: no network at all) and a new PID namespace whose
  processes all die with it, running as a fresh unprivileged uid (so the process limit counts only its
  own processes, and the OS refuses writes to anything not world-writable);
* always: an audit hook in the harness that refuses sockets, new processes, signals, ``ctypes``, and
  writes or file changes outside the test folder.

The audit hook is a Python-level guard: code that subverts the interpreter (e.g. a C extension) could
get past it, which is why ``isolated`` mode adds the OS layer. Without it (``hooked`` mode: not root, or
no ``unshare``) network and writes are blocked by the hook alone; ``raw`` records the mode of each run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from prefmill.storage.schemas import empty_table
from prefmill.tasks.evaluation.verifiers import point_judgments


class CodeVerifierSettings(Protocol):
    """What the sandbox reads of a ``code`` judge's config (judges/code.py ``CodeVerifier``)."""

    name: str
    timeout_s: float
    cpu_s: int
    memory_mb: int
    max_processes: int
    max_output_kb: int
    parallel: int


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3"}
#: Characters of stdout/stderr read back from a case.
_OUTPUT_SHOWN = 400


@dataclass(frozen=True)
class Case:
    """One test case: Python test code (``tests``), or stdin ``input`` with expected ``output``."""

    tests: str | None = None
    input: str = ""
    output: str | None = None


@dataclass(frozen=True)
class CaseResult:
    passed: bool
    reason: str
    seconds: float


def parse_code_reference(reference: str | None) -> list[Case] | None:
    """The test cases of a code reference; None when ``reference`` is not a code test spec.

    Raises ``ValueError`` when it is a JSON object with ``tests``/``cases`` of the wrong shape.
    """
    if not reference or not reference.lstrip().startswith("{"):
        return None
    try:
        spec = json.loads(reference)
    except ValueError:
        return None
    if not isinstance(spec, dict) or not ({"tests", "cases"} & spec.keys()):
        return None
    cases: list[Case] = []
    tests = spec.get("tests")
    if tests is not None:
        items = [tests] if isinstance(tests, str) else tests
        if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
            raise ValueError('"tests" must be Python code or a non-empty list of Python code strings')
        cases += [Case(tests=t) for t in items]
    io_cases = spec.get("cases")
    if io_cases is not None:
        if not isinstance(io_cases, list) or not io_cases:
            raise ValueError('"cases" must be a non-empty list of {"input": ..., "output": ...}')
        for i, c in enumerate(io_cases):
            if not isinstance(c, dict) or not isinstance(c.get("output"), str):
                raise ValueError(f'"cases"[{i}] needs a string "output" (and an optional string "input")')
            if not isinstance(c.get("input", ""), str):
                raise ValueError(f'"cases"[{i}]: "input" must be a string')
            cases.append(Case(input=c.get("input", ""), output=c["output"]))
    return cases


def extract_code(response: str | None) -> str | None:
    """The Python code of a response (see the module docstring), or None."""
    if not response or not response.strip():
        return None
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(response)]
    for wanted in (lambda t: t in _PYTHON_TAGS, lambda t: t == ""):
        chosen = [b for t, b in blocks if wanted(t) and b.strip()]
        if chosen:
            return max(chosen, key=len)
    if blocks:
        return None
    try:
        compile(response, "response", "exec")
    except (SyntaxError, ValueError):
        return None
    return response


def _normalise_output(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).rstrip("\n")


# -- sandbox -----------------------------------------------------------------------------------


@cache
def sandbox_mode() -> str:
    """``isolated`` when network/PID namespaces and a uid switch work here, else ``hooked``."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if os.name != "posix" or os.geteuid() != 0 or not unshare or not setpriv:
        return "hooked"
    probe = [*_isolation_prefix(unshare, setpriv, _fresh_uid()), sys.executable, "-I", "-c", "pass"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "hooked"
    return "isolated" if done.returncode == 0 else "hooked"


def _isolation_prefix(unshare: str, setpriv: str, uid: int) -> list[str]:
    return [
        unshare, "--net", "--pid", "--fork", "--kill-child",
        setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
    ]  # fmt: skip


def _fresh_uid() -> int:
    """A uid no one else uses, so the process limit and the final sweep see only this case."""
    return secrets.SystemRandom().randrange(1_000_000, 2_000_000_000)


def _limits(config: CodeVerifierSettings, isolated: bool) -> str:
    """The resource limits as the harness's argument (``name=value,...``): the harness sets them on
    itself before the candidate's code runs (no ``preexec_fn``, which is unsafe in a threaded parent)."""
    nproc = config.max_processes
    if not isolated:  # the limit counts every process of this user: leave room for the ones running
        nproc += _user_processes()
    values = {
        "CPU": config.cpu_s,
        "AS": config.memory_mb * 1024 * 1024,
        "FSIZE": config.max_output_kb * 1024,
        "NOFILE": 256,
        "CORE": 0,
        "NPROC": nproc,
    }
    return ",".join(f"{k}={v}" for k, v in values.items())


def _user_processes() -> int:
    uid = os.getuid()
    return sum(1 for p in _proc_status() if p[1] == uid)


def _proc_status() -> Iterator[tuple[int, int]]:
    """(pid, real uid) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        yield int(entry), int(line.split()[1])
                        break
        except OSError:
            continue


def _kill_uid(uid: int) -> None:
    """SIGKILL every process left running as ``uid`` (a fresh uid: only the candidate's)."""
    for pid, owner in _proc_status():
        if owner == uid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bool, float]:
    """Reap ``proc``, SIGKILLing its process group after ``timeout`` s: (timed out, CPU seconds used by it
    and the descendants it reaped, i.e. the candidate's, also behind ``unshare``)."""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if timed_out else os.WNOHANG)
        if pid:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        else:
            time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return timed_out, usage.ru_utime + usage.ru_stime


_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "output / file size limit exceeded",
    signal.SIGSEGV: "crashed (segmentation fault)",
}


def _read_head(path: Path, limit: int = _OUTPUT_SHOWN * 4) -> str:
    try:
        with path.open("rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _short(text: str, n: int = 80) -> str:
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "…")


def run_case(code: str, case: Case, config: CodeVerifierSettings) -> CaseResult:
    """Run one test case in a fresh sandbox folder; never raises for anything the candidate does."""
    mode = sandbox_mode()
    isolated = mode == "isolated"
    uid = _fresh_uid()
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="prefmill-code-"))
    try:
        harness = resources.files("prefmill.tasks.evaluation").joinpath("sandbox_harness.py")
        (folder / "sandbox_harness.py").write_text(harness.read_text(encoding="utf-8"), encoding="utf-8")
        (folder / "solution.py").write_text(code, encoding="utf-8")
        (folder / "tests.py").write_text(case.tests or "", encoding="utf-8")
        (folder / "stdin.txt").write_text(case.input, encoding="utf-8")
        if isolated:
            os.chown(folder, uid, uid)
            folder.chmod(0o700)
        token = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        os.write(write_end, token.encode())
        os.close(write_end)
        prefix = _isolation_prefix(
            shutil.which("unshare") or "unshare", shutil.which("setpriv") or "setpriv", uid
        )
        argv = [*(prefix if isolated else []), sys.executable, "-I", "sandbox_harness.py"]
        argv += ["tests" if case.tests is not None else "io", str(read_end), _limits(config, isolated)]
        env = {"HOME": str(folder), "TMPDIR": str(folder), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        with (
            (folder / "stdin.txt").open("rb") as stdin,
            (folder / "stdout.txt").open("wb") as stdout,
            (folder / "stderr.txt").open("wb") as stderr,
        ):
            if isolated:
                for name in ("stdout.txt", "stderr.txt"):
                    os.chown(folder / name, uid, uid)
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=folder,
                    env=env,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    pass_fds=(read_end,),
                    start_new_session=True,
                )
            finally:
                os.close(read_end)
            timed_out, cpu_used = _wait(proc, config.timeout_s)
        if isolated:
            _kill_uid(uid)
        seconds = time.perf_counter() - started
        result = _read_head(folder / "_result", 4096)
        status = result.split("\n", 1)[1] if result.startswith(token + "\n") else None
        stderr_text = _read_head(folder / "stderr.txt")
        if timed_out:
            return CaseResult(False, f"wall-clock timeout after {config.timeout_s:g} s", seconds)
        if status is None:
            code_ = proc.returncode
            if cpu_used >= config.cpu_s:  # however it died (SIGKILL; unshare exiting 1 on a SIGKILLed child)
                reason = _SIGNAL_REASONS[signal.SIGXCPU] + f" ({config.cpu_s} s)"
            elif code_ < 0:
                sig = signal.Signals(-code_)
                reason = _SIGNAL_REASONS.get(sig, f"killed by {sig.name}")
                if sig == signal.SIGKILL and "MemoryError" in stderr_text:
                    reason = "memory limit exceeded"
            else:
                reason = f"exited with code {code_} before the tests finished"
                if stderr_text.strip():
                    reason += f" (stderr: {_short(stderr_text.strip().splitlines()[-1])})"
            return CaseResult(False, reason, seconds)
        if status != "ok":
            if status.startswith("MemoryError"):
                return CaseResult(False, "memory limit exceeded (MemoryError)", seconds)
            if "[Errno 27]" in status:  # EFBIG: Python ignores SIGXFSZ, so the write fails instead
                return CaseResult(False, "output / file size limit exceeded (File too large)", seconds)
            return CaseResult(False, _short(status, 200).strip("'\""), seconds)
        if case.output is not None:
            got = _normalise_output(_read_head(folder / "stdout.txt", config.max_output_kb * 1024))
            want = _normalise_output(case.output)
            if got != want:
                return CaseResult(False, f"wrong output: expected {_short(want)}, got {_short(got)}", seconds)
        return CaseResult(True, "passed", seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the verifier ------------------------------------------------------------------------------


def code_verifier(config: CodeVerifierSettings, cands: pa.Table) -> pa.Table:
    """``code`` judgments for the rows of ``cands`` whose reference is a code test spec.

    ``cands`` needs candidate_id, prompt_id, response and reference (error rows already dropped). Test
    cases run ``config.parallel`` at a time.
    """
    rows: list[tuple[str, str, str | None, list[Case] | None, str | None]] = []
    for cid, pid, response, reference in zip(
        cands.column("candidate_id").to_pylist(),
        cands.column("prompt_id").to_pylist(),
        cands.column("response").to_pylist(),
        cands.column("reference").to_pylist(),
        strict=True,
    ):
        try:
            cases = parse_code_reference(reference)
        except ValueError as exc:
            rows.append((cid, pid, None, None, f"reference is not a valid code test spec: {exc}"))
            continue
        if cases is not None:
            rows.append((cid, pid, extract_code(response), cases, None))
    if not rows:
        return empty_table("judgments")
    jobs = [
        (r, i, case)
        for r, (_, _, code, cases, _) in enumerate(rows)
        if code
        for i, case in enumerate(cases or [])
    ]
    with ThreadPoolExecutor(max_workers=config.parallel) as pool:
        results = list(pool.map(lambda job: run_case(rows[job[0]][2] or "", job[2], config), jobs))
    per_row: dict[int, list[tuple[int, CaseResult]]] = {}
    for (r, i, _), res in zip(jobs, results, strict=True):
        per_row.setdefault(r, []).append((i, res))
    scores: list[float | None] = []
    rationales: list[str | None] = []
    raws: list[str | None] = []
    errors: list[str | None] = []
    mode = sandbox_mode()
    for r, (_, _, code, cases, error) in enumerate(rows):
        if error is not None or not code:
            scores.append(None if error is not None else 0.0)
            rationales.append(None if error is not None else "no Python code found in the response")
            raws.append(None)
            errors.append(error)
            continue
        outcome = sorted(per_row.get(r, []))
        passed = sum(res.passed for _, res in outcome)
        total = len(cases or [])
        first_failure = next(((i, res) for i, res in outcome if not res.passed), None)
        reason = f"{passed}/{total} test cases passed"
        if first_failure:
            reason += f"; case {first_failure[0] + 1}: {first_failure[1].reason}"
        scores.append(passed / total)
        rationales.append(reason)
        errors.append(None)
        raws.append(
            json.dumps(
                {
                    "sandbox": mode,
                    "cases": [
                        {"passed": res.passed, "reason": res.reason, "seconds": round(res.seconds, 3)}
                        for _, res in outcome
                    ],
                }
            )
        )
    return point_judgments(
        config.name, [r[0] for r in rows], [r[1] for r in rows], scores, rationales, raws, errors
    )
