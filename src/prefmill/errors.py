"""One exception family. Messages are one line, name the file / line / row / field, and say the fix.

The CLI prints them without a traceback (``--debug`` shows it).
"""

from __future__ import annotations


class PrefmillError(Exception):
    """Base of every error prefmill raises on purpose."""


class RecipeError(PrefmillError):
    """The recipe file is missing, not YAML, or does not validate."""


class InputError(PrefmillError):
    """A prompt / response source file is missing, empty or malformed."""


class SchemaError(PrefmillError):
    """A table does not match its declared schema."""


class StorageError(PrefmillError):
    """The table store cannot do what was asked."""


class NotFoundError(StorageError):
    """A dataset, table, version or ref does not exist."""


class EngineError(PrefmillError):
    """A generation engine cannot be built or run."""


class QueryError(PrefmillError):
    """A SQL query failed."""


class ExportError(PrefmillError):
    """An export could not be written (bad format for the table, output folder in the way, ...)."""


class FidelityError(PrefmillError):
    """A judge failed a fidelity threshold of the recipe (evaluation.fidelity)."""


class RunnerError(PrefmillError):
    """A task runner (Dask / Ray cluster) cannot be used as configured."""


class ErrorBudgetError(PrefmillError):
    """A stage's failed rows exceed the recipe's error budget (``max_error_rate``)."""
