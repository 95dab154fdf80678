"""The code verifier's sandbox against hostile candidates: each case runs in its own limited process
(fork and thread bombs, runaway CPU, memory, output, file and network use), and several wait for a
CPU or wall-clock limit to trip, which is why these tests live with the integration tests. The
verifier's fast cases stay in tests/unit/test_code_verifier.py, which also holds the hostile corpus."""

from __future__ import annotations

import json
import os

import pytest
from test_code_verifier import ADD_TESTS, ESCAPE, FAST, GOOD_ADD, HOSTILE, ONE_TEST, table

from prefmill.storage.schemas import conform
from prefmill.tasks.evaluation import judge_shard
from prefmill.tasks.evaluation.code import Case, run_case, sandbox_mode


def test_hostile_candidates_fail_with_reasons_and_the_shard_goes_on() -> None:
    names = list(HOSTILE)
    responses = [HOSTILE[n][0] for n in names] + [GOOD_ADD]
    refs = [ONE_TEST] * len(names) + [ADD_TESTS]
    out = judge_shard(table(responses, refs), [FAST])
    conform("judgments", out)
    rows = {r["candidate_id"]: r for r in out.to_pylist()}
    assert len(rows) == len(responses)
    for i, name in enumerate(names):
        row = rows[f"c{i}"]
        assert row["score"] == 0.0, (name, row["rationale"])
        assert row["parse_error"] is None
        assert row["rationale"].startswith("0/1 test cases passed; case 1: "), (name, row["rationale"])
        assert any(p in row["rationale"] for p in HOSTILE[name][1]), (name, row["rationale"])
        raw = json.loads(row["raw"])
        assert raw["sandbox"] == sandbox_mode() and len(raw["cases"]) == 1
    good = rows[f"c{len(names)}"]
    assert (good["score"], good["rationale"]) == (1.0, "2/2 test cases passed")
    assert not os.path.exists(ESCAPE)
    assert os.path.exists("/etc/hostname")


@pytest.mark.parametrize("mode", ["isolated", "hooked"])
def test_cpu_limit_is_named_even_when_the_candidate_ignores_sigxcpu(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ignoring SIGXCPU leaves only the hard limit's SIGKILL (which ``unshare`` 2.38 cannot re-raise: it
    exits 1); the verdict must still name the CPU limit, not a kill or an exit code."""
    import prefmill.tasks.evaluation.code as code

    if mode == "isolated" and sandbox_mode() != "isolated":
        pytest.skip("needs root with unshare/setpriv")
    monkeypatch.setattr(code, "sandbox_mode", lambda: mode)
    spin = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n"
    result = run_case(spin, Case(tests="pass"), FAST.model_copy(update={"timeout_s": 20}))
    assert not result.passed and result.reason.startswith("CPU time limit exceeded"), result.reason


def test_hooked_mode_still_blocks_the_hostile_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without namespaces (not root, no unshare) the audit hook and the rlimits alone hold the line."""
    import prefmill.tasks.evaluation.code as code

    monkeypatch.setattr(code, "sandbox_mode", lambda: "hooked")
    names = [
        "fork bomb",
        "huge output",
        "memory hog",
        "write outside",
        "network",
        "exit early",
        "infinite loop",
    ]
    out = judge_shard(
        table([HOSTILE[n][0] for n in names] + [GOOD_ADD], [ONE_TEST] * (len(names) + 1)), [FAST]
    )
    rows = out.to_pylist()
    for name, row in zip(names, rows, strict=False):
        assert row["score"] == 0.0 and any(p in row["rationale"] for p in HOSTILE[name][1]), (name, row)
        assert json.loads(row["raw"])["sandbox"] == "hooked"
    assert rows[-1]["score"] == 1.0
    assert not os.path.exists(ESCAPE)
