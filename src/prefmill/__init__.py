"""prefmill: prompts in, versioned preference datasets out.

Stages (Prefect flows) materialize versioned Parquet tables:
prompts -> candidates -> judgments -> pairs / points / lists.

The Python API (``prefmill.api``, loaded on first use): ``prefmill.build(recipe, root=...)`` and
``prefmill.open(root)``.
"""

from prefmill.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_exports(
    __name__, {"build": "api", "open": "api", "Dataset": "api"}, also=("__version__",)
)
