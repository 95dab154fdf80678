"""The code verifier: reference formats, code extraction, and a corpus of hostile candidates that must
each end as a failed verdict with a clear reason while the rest of the shard is judged."""

from __future__ import annotations

import json
import os
import uuid

import pyarrow as pa
import pytest

from prefmill.recipe import CodeVerifier
from prefmill.tasks.evaluation import judge_shard
from prefmill.tasks.evaluation.code import Case, extract_code, parse_code_reference, run_case, sandbox_mode

FAST = CodeVerifier(kind="code", timeout_s=2, cpu_s=1, memory_mb=256, max_output_kb=64, parallel=2)
ADD_TESTS = json.dumps({"tests": ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"]})
ONE_TEST = json.dumps({"tests": "assert add(2, 3) == 5"})
SUM_CASES = json.dumps({"cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4\n", "output": "6"}]})
GOOD_ADD = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\n"
ESCAPE = f"/tmp/prefmill-escape-{uuid.uuid4().hex}"

# name -> (response, expected score, a phrase every acceptable reason contains)
HOSTILE: dict[str, tuple[str, tuple[str, ...]]] = {
    "infinite loop": ("```python\nwhile True:\n    pass\n```", ("wall-clock timeout", "CPU time limit")),
    "sleep forever": ("```python\nimport time\ntime.sleep(1000)\n```", ("wall-clock timeout",)),
    "fork bomb": ("```python\nimport os\nwhile True:\n    os.fork()\n```", ("processes is blocked",)),
    "subprocess": (
        "```python\nimport subprocess\nsubprocess.run(['sh', '-c', ':(){ :|:& };:'])\n```",
        ("processes is blocked",),
    ),
    "thread bomb": (
        "```python\nimport threading, time\nfor _ in range(10000):\n"
        "    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n```",
        ("can't start new thread",),
    ),
    "huge output": (
        "```python\nimport sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n```",
        ("output / file size limit",),
    ),
    "huge file": (
        "```python\nwith open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'0' * 65536)\n```",
        ("output / file size limit",),
    ),
    "memory hog": ("```python\nblocks = [bytearray(4 * 10**8) for _ in range(100)]\n```", ("memory limit",)),
    "write outside": (
        f"```python\nopen({ESCAPE!r}, 'w').write('escaped')\n```",
        ("writing outside the sandbox folder is blocked",),
    ),
    "delete outside": (
        "```python\nimport os\nos.remove('/etc/hostname')\n```",
        ("outside the sandbox folder",),
    ),
    "network": (
        "```python\nimport socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n```",
        ("network access is blocked",),
    ),
    "urllib": (
        "```python\nimport urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)\n```",
        ("network access is blocked",),
    ),
    "ctypes": ("```python\nimport ctypes\nctypes.CDLL(None).fork()\n```", ("ctypes is blocked",)),
    "exit early": ("```python\nimport os\nos._exit(0)\n```", ("before the tests finished",)),
    "sys.exit": ("```python\nimport sys\nsys.exit(0)\n```", ("before the tests finished",)),
    "kill parent": ("```python\nimport os\nos.kill(os.getppid(), 9)\n```", ("processes is blocked",)),
    "raise limits": (
        "```python\nimport resource\nresource.setrlimit(resource.RLIMIT_CPU, (-1, -1))\n```",
        ("changing resource limits is blocked",),
    ),
    "syntax error": ("```python\ndef add(:\n```", ("SyntaxError",)),
}


def table(responses: list[str | None], references: list[str | None]) -> pa.Table:
    n = len(responses)
    return pa.table(
        {
            "candidate_id": [f"c{i}" for i in range(n)],
            "prompt_id": [f"p{i}" for i in range(n)],
            "response": responses,
            "reference": references,
            "error": pa.nulls(n, pa.string()),
        }
    )


def test_partial_pass_names_the_failing_case_and_line() -> None:
    wrong_sign = "```python\ndef add(a, b):\n    return a + b if a > 0 else a - b\n```"
    (row,) = judge_shard(table([wrong_sign], [ADD_TESTS]), [FAST]).to_pylist()
    assert row["score"] == 0.5
    assert row["rationale"] == (
        "1/2 test cases passed; case 2: AssertionError at tests.py line 1: assert add(-1, 1) == 0"
    )


def test_stdin_stdout_cases() -> None:
    right = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    wrong = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"
    out = judge_shard(table([right, wrong], [SUM_CASES, SUM_CASES]), [FAST]).to_pylist()
    assert out[0]["score"] == 1.0
    assert out[1]["score"] == 0.0
    assert out[1]["rationale"] == "0/2 test cases passed; case 1: wrong output: expected '5', got '6'"


def test_no_code_bad_spec_and_non_code_prompts() -> None:
    refs = [ADD_TESTS, '{"tests": 5}', '{"cases": [{"input": "1"}]}', "42", None, '{"answer": 3}']
    out = judge_shard(
        table(["Just prose, no code here.", GOOD_ADD, GOOD_ADD, GOOD_ADD, GOOD_ADD, GOOD_ADD], refs), [FAST]
    )
    rows = {r["candidate_id"]: r for r in out.to_pylist()}
    assert set(rows) == {"c0", "c1", "c2"}  # "42", null and a non-test JSON object are not code prompts
    assert (rows["c0"]["score"], rows["c0"]["rationale"]) == (0.0, "no Python code found in the response")
    assert rows["c1"]["score"] is None and "tests" in rows["c1"]["parse_error"]
    assert rows["c2"]["score"] is None and 'needs a string "output"' in rows["c2"]["parse_error"]


@pytest.mark.skipif(sandbox_mode() != "isolated", reason="needs root with unshare/setpriv")
def test_isolated_mode_runs_unprivileged_in_its_own_network_namespace() -> None:
    parent_ns = os.readlink("/proc/self/ns/net")
    tests = (
        "import os\n"
        "assert os.getuid() != 0 and os.getgid() != 0\n"
        f"assert os.readlink('/proc/self/ns/net') != {parent_ns!r}\n"
        "assert os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR']\n"
        "assert open('scratch.txt', 'w').write('inside is fine') == 14\n"
    )
    result = run_case("", Case(tests=tests), FAST)
    assert result.passed, result.reason


def test_parse_code_reference() -> None:
    assert parse_code_reference(None) is None
    assert parse_code_reference("42") is None
    assert parse_code_reference('{"answer": 1}') is None
    assert parse_code_reference("{not json") is None
    assert parse_code_reference('{"tests": "assert f()"}') == [Case(tests="assert f()")]
    assert parse_code_reference('{"cases": [{"output": "1"}]}') == [Case(input="", output="1")]
    with pytest.raises(ValueError, match="non-empty list"):
        parse_code_reference('{"cases": []}')


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ("```python\nx = 1\n```\nthen\n```python\ndef f():\n    return 2\n```", "def f():\n    return 2\n"),
        ("```\nprint(1)\n```", "print(1)\n"),
        ("```py\na = 1\n```\n```\nlonger untagged block\n```", "a = 1\n"),
        ("def f():\n    return 3\n", "def f():\n    return 3\n"),
        ("Sure! def f(): return 3", None),
        ("```bash\nrm -rf /\n```", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_code(response: str | None, code: str | None) -> None:
    assert extract_code(response) == code
