"""The seeded arithmetic word-problem generator."""

from __future__ import annotations

import ast
import json
import operator

import pytest

from prefmill.ids import content_id
from prefmill.storage.schemas import conform, empty_table
from prefmill.tasks.prompts import arithmetic_problems, combine
from prefmill.tasks.prompts.arithmetic import SUFFIX

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def evaluate(expression: str) -> int:
    """Evaluate an integer + - * expression without eval()."""

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        raise ValueError(f"unexpected node in {expression!r}: {ast.dump(node)}")

    return walk(ast.parse(expression, mode="eval"))


def test_same_seed_same_rows_and_different_seed_different_rows() -> None:
    a = arithmetic_problems(50, seed=11)
    b = arithmetic_problems(50, seed=11)
    c = arithmetic_problems(50, seed=12)
    assert a.equals(b)
    assert a["prompt_id"].to_pylist() != c["prompt_id"].to_pylist()
    # A prefix of a longer run is the same as a shorter run.
    assert (
        arithmetic_problems(80, seed=11).slice(0, 50)["prompt_id"].to_pylist() == a["prompt_id"].to_pylist()
    )


def test_answers_are_correct_and_rows_conform() -> None:
    table = conform("prompts", arithmetic_problems(300, seed=5))
    for row in table.to_pylist():
        meta = json.loads(row["meta"])
        value = evaluate(meta["expression"])
        assert row["reference"] == str(value)
        assert value >= 0
        text = row["messages"][0]["content"]
        assert row["messages"] == [{"role": "user", "content": text}]
        assert text.endswith(SUFFIX)
        assert row["prompt_id"] == content_id({"messages": row["messages"]})
        assert row["source"] == "arithmetic"
        # The operands of the expression appear in the text.
        for number in meta["expression"].replace("+", " ").replace("-", " ").replace("*", " ").split():
            assert number in text


def test_problems_are_varied() -> None:
    rows = arithmetic_problems(300, seed=1).to_pylist()
    metas = [json.loads(r["meta"]) for r in rows]
    ops = {m["op"] for m in metas}
    assert {"add", "sub", "mul"} <= ops
    assert ops & {"mul_add", "add_sub"}  # some two-step problems
    templates = {(m["op"], m["template"]) for m in metas}
    assert len(templates) >= 12
    texts = [r["messages"][0]["content"] for r in rows]
    assert len(set(texts)) == len(texts)  # no repeats when the space is large enough
    openings = {t.split()[0] for t in texts}
    assert len(openings) >= 10  # names, "What", "There", "Each", "A", ...


def test_operand_bound() -> None:
    for row in arithmetic_problems(200, seed=2, max_operand=9).to_pylist():
        expression = json.loads(row["meta"])["expression"]
        operands = expression.replace("+", " ").replace("-", " ").replace("*", " ").split()
        assert all(1 <= int(x) <= 9 for x in operands[:2])


def test_overlapping_runs_are_deduplicated_by_combine() -> None:
    small = arithmetic_problems(20, seed=2, max_operand=2)
    large = arithmetic_problems(40, seed=2, max_operand=2)
    assert len(set(large["prompt_id"].to_pylist())) == 40  # names and objects keep even tiny operands apart
    prompts, rejected = combine(
        [(small, empty_table("prompts_rejected")), (large, empty_table("prompts_rejected"))]
    )
    assert prompts.num_rows == 40
    assert rejected.num_rows == 20
    assert rejected["reason"].to_pylist()[0].endswith("(first seen at arithmetic(seed=2):#1)")


def test_bad_arguments() -> None:
    assert arithmetic_problems(0, seed=0).num_rows == 0
    with pytest.raises(ValueError):
        arithmetic_problems(-1, seed=0)
    with pytest.raises(ValueError):
        arithmetic_problems(3, seed=0, max_operand=1)
