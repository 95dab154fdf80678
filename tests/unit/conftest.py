"""The unit suite stays fast: a unit test that spends more than a few CPU-seconds fails.

``tests/unit`` is meant to run in under a minute on 2 cores: no model, no Prefect, no other process
that does real work. A test that loads a model or runs a build does not belong here; it goes to
``tests/integration``. The budget is CPU time (this process plus the child processes it waited for),
not wall time, so a busy machine does not make a test fail; sleeping does not count either.
``PREFMILL_UNIT_CPU_BUDGET_S`` changes the budget (``0`` switches the check off).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator

import pytest

#: CPU-seconds one unit test may spend (setup, call and teardown each).
DEFAULT_BUDGET_S = 5.0


def _budget() -> float:
    return float(os.environ.get("PREFMILL_UNIT_CPU_BUDGET_S", DEFAULT_BUDGET_S))


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _check(item: pytest.Item, when: str, spent: float) -> None:
    budget = _budget()
    if budget and spent > budget:
        pytest.fail(
            f"{item.nodeid} ({when}) spent {spent:.1f} CPU-seconds, over the unit budget of {budget:g} s: "
            "a test that loads a model, starts Prefect or runs other processes belongs in "
            "tests/integration (PREFMILL_UNIT_CPU_BUDGET_S sets the budget)",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    started = _cpu_seconds()
    yield  # a test that failed raises here: nothing to add
    _check(item, "call", _cpu_seconds() - started)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    started = _cpu_seconds()
    yield  # a test that failed raises here: nothing to add
    _check(item, "setup", _cpu_seconds() - started)
