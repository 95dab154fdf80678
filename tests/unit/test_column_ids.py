"""The column-wise ids equal the row-by-row ones (``prefmill.ids``), for any string."""

from __future__ import annotations

import random

import pyarrow as pa

from prefmill.column_ids import content_ids, join, json_strings
from prefmill.ids import canonical_json, content_id
from prefmill.tasks.evaluation.verifiers import point_judgment_id, point_judgment_ids, point_judgments

ODD = [
    "a1b2c3d4e5f60718",
    "",
    'quote " and backslash \\',
    "tab\tnew\nret\r\x00\x01\x1f del\x7f",
    "中文 🙂 é \u2028 \ufeff",
    "\\u0041",
    "</script>",
]


def _random_strings(rng: random.Random, n: int) -> list[str]:
    alphabet = 'ab"\\\n\t\x00\x1fé中🙂 {}[],:0'
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))) for _ in range(n)]


def test_json_strings_are_canonical_json() -> None:
    rng = random.Random(1)
    for values in (ODD, [*ODD, None], _random_strings(rng, 300), ["plain", "ids"], []):
        got = json_strings(pa.array(values, pa.string())).to_pylist()
        assert got == [canonical_json(v) for v in values]
    chunked = pa.chunked_array([pa.array(ODD[:3]), pa.array(ODD[3:])])
    assert json_strings(chunked).to_pylist() == [canonical_json(v) for v in ODD]


def test_content_ids_of_joined_json_equal_content_id() -> None:
    rng = random.Random(2)
    values = [*ODD, *_random_strings(rng, 200)]
    texts = join("[", json_strings(pa.array(values)), ",7,null]")
    assert content_ids(texts).to_pylist() == [content_id([v, 7, None]) for v in values]


def test_point_judgment_ids_equal_the_row_formula() -> None:
    rng = random.Random(3)
    cids = [*ODD, *_random_strings(rng, 200)]
    for judge, criterion in (("heuristic", "overall"), ('j "é"', "help\\fulness")):
        want = [point_judgment_id(judge, c, criterion) for c in cids]
        assert point_judgment_ids(judge, cids, criterion).to_pylist() == want
        assert point_judgment_ids(judge, pa.array(cids), criterion).to_pylist() == want


def test_point_judgments_take_lists_or_arrays_alike() -> None:
    cols = (["c1", 'c"2'], ["p", "p"], [0.5, None], ["why", None], ['{"a":1}', None], [None, "bad"])
    from_lists = point_judgments("heuristic", *cols)
    from_arrays = point_judgments("heuristic", *(pa.array(c) for c in cols))
    assert from_lists.equals(from_arrays)
    assert from_lists.column("judgment_id").to_pylist() == [
        point_judgment_id("heuristic", c) for c in cols[0]
    ]
    assert from_lists.column("parse_error").to_pylist() == [None, "bad"]
