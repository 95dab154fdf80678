"""A seeded generator of short arithmetic word problems with exact integer answers.

Used by the quickstart and the ``reasoning`` template as a source of prompts that a verifier can check.
Each problem is one of four operations -- addition, subtraction (never below zero), multiplication and
a two-step problem (``a * b + c`` or ``a + b - c``) -- told through one of several templates with a
person, an object and a setting drawn at random, and ends with "Give the final answer as a number.".

``reference`` holds the answer as a string (``"42"``); ``meta`` holds the expression
(``{"expression": "17 + 25", "op": "add", "template": 2}``), so the answer can be recomputed.
The same ``(n, seed, max_operand)`` gives the same rows on every machine (``random.Random(seed)``
only, no global state).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pyarrow as pa

from prefmill.ids import canonical_json, content_id
from prefmill.storage.schemas import MESSAGE, conform

SOURCE = "arithmetic"
SUFFIX = "Give the final answer as a number."

NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Liam", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara",
)  # fmt: skip
# (singular, plural)
OBJECTS = (
    ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("book", "books"),
    ("pencil", "pencils"), ("shell", "shells"), ("stamp", "stamps"), ("cookie", "cookies"),
    ("coin", "coins"), ("card", "cards"), ("balloon", "balloons"), ("seed", "seeds"),
)  # fmt: skip
CONTAINERS = (
    ("box", "boxes"), ("bag", "bags"), ("basket", "baskets"), ("jar", "jars"),
    ("crate", "crates"), ("tray", "trays"), ("shelf", "shelves"), ("drawer", "drawers"),
)  # fmt: skip

# Templates take (a, b[, c]) and the drawn words; {o} is the plural object.
ADD = (
    "{p} has {a} {o}. {q} gives {p} {b} more {o}. How many {o} does {p} have now?",
    "There are {a} {o} in a {k} and {b} {o} in another {k}. How many {o} are there in total?",
    "On Monday {p} collected {a} {o}, and on Tuesday {b} more. "
    "How many {o} did {p} collect over the two days?",
    "What is {a} plus {b}?",
    "A shop sold {a} {o} in the morning and {b} {o} in the afternoon. How many {o} did it sell that day?",
)
SUB = (
    "{p} had {a} {o} and gave {b} of them to {q}. How many {o} does {p} have left?",
    "A {k} held {a} {o}. {p} took out {b}. How many {o} are still in the {k}?",
    "{p} needs {a} {o} and already has {b}. How many more {o} does {p} need?",
    "What is {a} minus {b}?",
    "There were {a} {o} on the table. After {q} used {b} of them, how many were left?",
)
MUL = (
    "{p} has {a} {ks}, and each {k} holds {b} {o}. How many {o} are there altogether?",
    "Each of {a} friends brings {b} {o} to a party. How many {o} do they bring in total?",
    "What is {a} times {b}?",
    "{p} buys {a} packs of {o} with {b} {o} in each pack. How many {o} does {p} buy?",
    "A garden has {a} rows with {b} plants in each row. How many plants are in the garden?",
)
MUL_ADD = (
    "{p} fills {a} {ks} with {b} {o} each and has {c} loose {o} besides. How many {o} does {p} have?",
    "{p} reads {b} pages a day for {a} days and then {c} more pages. How many pages does {p} read?",
    "What is {a} times {b}, plus {c}?",
)
ADD_SUB = (
    "{p} has {a} {o}, finds {b} more, and then gives {c} to {q}. How many {o} does {p} have now?",
    "A bus carries {a} people. At the first stop {b} people get on and {c} get off. "
    "How many people are on the bus now?",
    "What is {a} plus {b}, minus {c}?",
)


def _add(rng: random.Random, m: int) -> tuple[str, int, tuple[int, ...], tuple[str, ...]]:
    a, b = rng.randint(1, m), rng.randint(1, m)
    return "add", a + b, (a, b), (f"{a} + {b}",)


def _sub(rng: random.Random, m: int) -> tuple[str, int, tuple[int, ...], tuple[str, ...]]:
    a, b = rng.randint(1, m), rng.randint(1, m)
    a, b = max(a, b), min(a, b)
    return "sub", a - b, (a, b), (f"{a} - {b}",)


def _mul(rng: random.Random, m: int) -> tuple[str, int, tuple[int, ...], tuple[str, ...]]:
    a, b = rng.randint(2, max(2, min(m, 12))), rng.randint(2, max(2, m))
    return "mul", a * b, (a, b), (f"{a} * {b}",)


def _mul_add(rng: random.Random, m: int) -> tuple[str, int, tuple[int, ...], tuple[str, ...]]:
    a, b, c = rng.randint(2, max(2, min(m, 12))), rng.randint(2, max(2, m)), rng.randint(1, m)
    return "mul_add", a * b + c, (a, b, c), (f"{a} * {b} + {c}",)


def _add_sub(rng: random.Random, m: int) -> tuple[str, int, tuple[int, ...], tuple[str, ...]]:
    a, b = rng.randint(1, m), rng.randint(1, m)
    c = rng.randint(1, a + b)
    return "add_sub", a + b - c, (a, b, c), (f"{a} + {b} - {c}",)


_Maker = Callable[[random.Random, int], tuple[str, int, tuple[int, ...], tuple[str, ...]]]
# (maker, templates, weight)
_KINDS: tuple[tuple[_Maker, tuple[str, ...], int], ...] = (
    (_add, ADD, 3),
    (_sub, SUB, 3),
    (_mul, MUL, 3),
    (_mul_add, MUL_ADD, 1),
    (_add_sub, ADD_SUB, 1),
)


def _problem(rng: random.Random, max_operand: int) -> tuple[str, str, str, int, int]:
    """(text, expression, op, answer, template index) of one random problem."""
    maker, templates, _ = rng.choices(_KINDS, weights=[k[2] for k in _KINDS])[0]
    op, answer, nums, (expression,) = maker(rng, max_operand)
    t = rng.randrange(len(templates))
    p, q = rng.sample(NAMES, 2)
    _, plural = rng.choice(OBJECTS)
    k, ks = rng.choice(CONTAINERS)
    values = dict(zip("abc", nums, strict=False))
    text = templates[t].format(p=p, q=q, o=plural, k=k, ks=ks, **values)
    return f"{text} {SUFFIX}", expression, op, answer, t


def arithmetic_problems(n: int, seed: int, *, max_operand: int = 50) -> pa.Table:
    """``n`` seeded arithmetic word problems as a ``prompts`` table (plus a ``location`` column).

    Operands are drawn from ``1..max_operand`` (multipliers from ``2..min(max_operand, 12)``). The
    generator tries to avoid repeating a prompt text (a bounded number of redraws); when the space of
    problems is too small for ``n`` it allows repeats, which ``build.combine`` then reports as
    duplicates.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if max_operand < 2:
        raise ValueError(f"max_operand must be >= 2, got {max_operand}")
    rng = random.Random(seed)
    seen: set[str] = set()
    ids: list[str] = []
    texts: list[str] = []
    refs: list[str] = []
    metas: list[str] = []
    for _ in range(n):
        for _attempt in range(20):
            text, expression, op, answer, t = _problem(rng, max_operand)
            if text not in seen:
                break
        seen.add(text)
        texts.append(text)
        ids.append(content_id({"messages": [{"role": "user", "content": text}]}))
        refs.append(str(answer))
        metas.append(canonical_json({"expression": expression, "op": op, "template": t}))
    offsets = pa.array(range(n + 1), pa.int32())
    messages = pa.ListArray.from_arrays(
        offsets,
        pa.StructArray.from_arrays(
            [pa.array(["user"] * n, pa.string()), pa.array(texts, pa.string())], fields=list(MESSAGE)
        ),
    )
    table = pa.table(
        {
            "prompt_id": pa.array(ids, pa.string()),
            "messages": messages,
            "source": pa.array([SOURCE] * n, pa.string()),
            "reference": pa.array(refs, pa.string()),
            "rubric": pa.nulls(n, pa.string()),
            "meta": pa.array(metas, pa.string()),
            "location": pa.array([f"{SOURCE}(seed={seed}):#{i + 1}" for i in range(n)], pa.string()),
        }
    )
    return conform("prompts", table)
