"""Built-in instantiation and selection SQL (DuckDB dialect, named ``$parameters``), kept as package data.

Each ``.sql`` file starts with a comment block naming its inputs, parameters and output columns, so a
user can read, copy and replace it from a recipe (DESIGN §5).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from prefmill.errors import QueryError

#: The file of table macros that define a usable judgment and swap consistency (the one built-in
#: file that is not a SELECT: ``define_judgment_macros`` runs it).
JUDGMENT_MACROS = "usable_judgments"


def sql_names() -> list[str]:
    """Names (without ``.sql``) of the built-in SQL files, sorted."""
    return sorted(
        entry.name.removesuffix(".sql")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".sql")
    )


def read_sql(name: str) -> str:
    """The text of built-in SQL file ``name`` (with or without the ``.sql`` suffix)."""
    filename = name if name.endswith(".sql") else f"{name}.sql"
    entry = resources.files(__name__).joinpath(filename)
    if not entry.is_file():
        known = ", ".join(sql_names())
        raise QueryError(f"no built-in SQL file '{filename}' in prefmill.sql: known files are {known}")
    return entry.read_text(encoding="utf-8")


def define_judgment_macros(con: Any) -> None:
    """Define the table macros ``usable_judgments()`` and ``swap_pairs()`` (usable_judgments.sql) on a
    DuckDB connection where ``judgments`` is already queryable."""
    import duckdb

    try:
        con.execute(read_sql(JUDGMENT_MACROS))
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise QueryError(
            f"cannot define usable_judgments() from prefmill/sql/{JUDGMENT_MACROS}.sql: {first}; "
            "bind the view judgments first"
        ) from exc
