"""What guards a running build: its lease on the store (``storage.lock``: gc and a second build
respect it) and its error budget (a stage whose rows failed beyond the recipe's ``max_error_rate``,
or all of them, fails the build before any ref moves; its version stays for ``--retry-errors``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from prefmill.errors import ErrorBudgetError
from prefmill.storage import Store
from prefmill.storage.hints import command
from prefmill.storage.lock import build_lease

if TYPE_CHECKING:
    from prefmill.flows.common import TableResult

F = TypeVar("F", bound=Callable[..., Any])

_budget: ContextVar[float | None] = ContextVar("prefmill_error_budget", default=None)


def _fix(r: TableResult) -> str:
    """What to do about a table's failed rows, with the commands to look at them."""
    at = {"root": r.root, "dataset": r.dataset or None}
    if r.table == "candidates":
        show = command("show", f"candidates@{r.version}", "--where", "error IS NOT NULL", **at)
        retry = command("build", "RECIPE", "--retry-errors", root=r.root)
        return (
            f"fix the engine (see the `error` column: `{show}`) and run `{retry}`, which re-attempts "
            "only the failed rows"
        )
    if r.table == "judgments":
        show = command("show", f"judgments@{r.version}", "--where", "parse_error IS NOT NULL", **at)
        return f"fix the judges' engine or template (see the `parse_error` column: `{show}`) and build again"
    return "fix the cause and build again"


@contextmanager
def error_budget(max_error_rate: float | None) -> Iterator[None]:
    """Check every stage run inside the block against ``max_error_rate`` (None: no check)."""
    token = _budget.set(max_error_rate)
    try:
        yield
    finally:
        _budget.reset(token)


def check_error_budget(stage: str, results: Sequence[TableResult]) -> list[TableResult]:
    """``results`` unchanged, or ``ErrorBudgetError`` when a table's share of failed rows is over the
    budget (or every row failed). The versions are published already: a retry starts from them."""
    limit = _budget.get()
    if limit is not None:
        for r in results:
            errors, rows = int(r.totals.get("errors", 0) or 0), r.rows
            if not rows or not errors or (errors < rows and errors / rows <= limit):
                continue
            what = "every row" if errors == rows else f"{errors / rows:.0%} of the rows"
            raise ErrorBudgetError(
                f"{stage}: {what} of {r.table}@{r.version} failed ({errors} of {rows}; recipe "
                f"max_error_rate {limit:g}); no ref was moved and the version is kept: "
                + _fix(r)
                + ("" if errors == rows else " (or raise `max_error_rate` in the recipe to accept it)")
            )
    return list(results)


def guarded(fn: F) -> F:
    """Run a build function (arguments ``recipe`` and ``root``) under a lease on its dataset and the
    recipe's error budget."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        recipe, root = bound.arguments["recipe"], bound.arguments["root"]
        with build_lease(Store(root), recipe.dataset), error_budget(recipe.max_error_rate):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
