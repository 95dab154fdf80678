"""Run instantiation SQL: scored candidates -> the ``pairs``, ``points`` or ``lists`` table.

The caller binds the input views ``prompts``, ``candidates`` and ``judgments`` on a DuckDB connection.
``instantiate`` then defines the ``content_id`` macro and the ``candidate_scores`` view (scores.sql),
runs the output's SQL (a built-in file or a user's SQL text) with the named parameters that SQL uses,
and returns an Arrow table checked against the output's schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import duckdb
import pyarrow as pa

from prefmill.errors import QueryError
from prefmill.sql import read_sql
from prefmill.storage.duck import to_arrow
from prefmill.storage.schemas import conform, schema_for

#: Bump when the built-in SQL or this runner changes what a given input produces.
INSTANTIATION_CODE_VERSION = "1"

#: Parameter values used where the recipe sets none.
DEFAULT_PARAMS: dict[str, object] = {"min_margin": 0.0, "tau": 1.0, "label_threshold": 0.5}

#: How scores.sql combines the judges of a candidate into ``score`` (the ``aggregation`` variable).
AGGREGATIONS: tuple[str, ...] = ("mean", "median", "vote")

#: The tables instantiation can produce; each has a built-in ``<name>.sql``.
OUTPUTS: tuple[str, ...] = ("pairs", "points", "lists")

#: ``content_id(list)`` in SQL: the first 16 hex chars of sha256 of the list's canonical JSON, equal to
#: ``prefmill.ids.content_id`` of the same Python list of strings. DuckDB's ``to_json`` already writes
#: ``["a","b"]`` (no spaces, unicode kept), except that it spells control-character escapes in upper
#: case (``\u001F``) where Python writes ``\u001f``; the escapes are split out and lower-cased so the
#: hash matches for every string. (A literal backslash is written ``\\`` and is its own token, so a
#: ``\u`` typed by a user is never touched.)
CONTENT_ID_MACRO = r"""
CREATE OR REPLACE TEMP MACRO content_id(x) AS substr(
    sha256(
        CASE
            WHEN contains(to_json(x)::VARCHAR, '\u') THEN array_to_string(
                list_transform(
                    regexp_extract_all(to_json(x)::VARCHAR, '(?s)\\u[0-9A-Fa-f]{4}|\\.|[^\\]+'),
                    lambda t: CASE WHEN starts_with(t, '\u') THEN lower(t) ELSE t END
                ),
                ''
            )
            ELSE to_json(x)::VARCHAR
        END
    ),
    1,
    16
)
"""


def _duck_message(exc: duckdb.Error) -> str:
    """DuckDB's message on one line: its first line, plus the ``LINE n:`` pointer when there is one."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    pointer = next((line for line in lines[1:] if line.startswith("LINE ")), None)
    return lines[0] + (f" ({pointer})" if pointer else "")


def sql_parameters(sql_text: str, *, where: str = "SQL") -> set[str]:
    """Names of the named ``$parameters`` that ``sql_text`` uses (comments and string literals ignored).

    Raises ``QueryError`` when the text does not parse, is not exactly one SELECT statement, or uses
    positional (``?`` / ``$1``) parameters.
    """
    try:
        statements = duckdb.extract_statements(sql_text)
    except duckdb.Error as exc:
        raise QueryError(f"{where}: SQL does not parse: {_duck_message(exc)}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "none"
        raise QueryError(
            f"{where}: must hold exactly one SELECT statement (found: {kinds}); "
            "put helper steps in WITH clauses"
        )
    names = set(statements[0].named_parameters)
    positional = sorted(n for n in names if n.isdigit())
    if positional:
        raise QueryError(
            f"{where}: uses positional parameters ({', '.join('$' + n for n in positional)} or ?); "
            "use named parameters such as $min_margin"
        )
    return names


def bind_candidate_scores(con: duckdb.DuckDBPyConnection, aggregation: str | None = None) -> None:
    """Define the ``content_id`` macro and the ``candidate_scores`` view (scores.sql) on ``con``.

    ``prompts``, ``candidates`` and ``judgments`` must already be queryable on ``con``. ``aggregation``
    (one of ``AGGREGATIONS``) sets the DuckDB variable scores.sql reads to combine judges; None keeps
    the connection's setting (``mean`` when unset).
    """
    scores = read_sql("scores")
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise QueryError(
            f"instantiation: aggregation {aggregation!r} is not one of {', '.join(AGGREGATIONS)}; "
            "fix evaluation.aggregation in the recipe"
        )
    try:
        if aggregation is not None:
            con.execute(f"SET VARIABLE aggregation = '{aggregation}'")
        con.execute(CONTENT_ID_MACRO)
        con.execute(f"CREATE OR REPLACE TEMP VIEW candidate_scores AS\n{scores}\n")
    except duckdb.Error as exc:
        raise QueryError(
            f"instantiation: cannot create view candidate_scores from prefmill/sql/scores.sql: "
            f"{_duck_message(exc)}; bind the views prompts, candidates and judgments first"
        ) from exc


def _check_params(values: Mapping[str, object], where: str) -> None:
    tau = values.get("tau")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, Real) or not float(tau) > 0):
        raise QueryError(f"{where}: parameter $tau must be a number > 0, got {tau!r}")


def _decimals_to_double(output: str, table: pa.Table) -> pa.Table:
    """Cast DECIMAL columns (and lists of DECIMAL) declared DOUBLE to DOUBLE.

    DuckDB types a bare literal such as ``1.0`` as ``DECIMAL(2,1)``, which users write in their SQL
    (``1.0 AS weight``); the declared schema wants ``double``.
    """
    for field in schema_for(output):
        if field.name not in table.column_names:
            continue
        actual = table.schema.field(field.name).type
        if pa.types.is_decimal(actual) and pa.types.is_floating(field.type):
            target: pa.DataType = field.type
        elif (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and pa.types.is_decimal(
            actual.value_type
        ):
            if not (pa.types.is_list(field.type) and pa.types.is_floating(field.type.value_type)):
                continue
            target = field.type
        else:
            continue
        index = table.schema.get_field_index(field.name)
        table = table.set_column(index, field.name, table.column(field.name).cast(target))
    return table


def instantiate(
    con: duckdb.DuckDBPyConnection,
    output: str,
    params: Mapping[str, object],
    sql_text: str | None = None,
    *,
    sql_file: str | None = None,
) -> pa.Table:
    """Build the ``output`` table ('pairs', 'points' or 'lists') from the views bound on ``con``.

    Runs the built-in ``prefmill/sql/<output>.sql``, or ``sql_text`` (a user's SQL file, named
    ``sql_file`` in error messages) when given. ``params`` override ``DEFAULT_PARAMS``; only the ones
    the SQL uses are passed. The result is checked and cast with ``schemas.conform``.
    """
    if output not in OUTPUTS:
        raise QueryError(f"unknown instantiation output '{output}': choose one of {', '.join(OUTPUTS)}")
    if sql_text is None:
        sql_text = read_sql(output)
        source = f"prefmill/sql/{output}.sql"
    else:
        source = sql_file or "custom SQL"
    where = f"instantiation of '{output}' ({source})"

    used = sql_parameters(sql_text, where=where)
    available = {**DEFAULT_PARAMS, **params}
    missing = sorted(used - available.keys())
    if missing:
        raise QueryError(
            f"{where}: parameter(s) {', '.join('$' + m for m in missing)} are used but not set; "
            "set them in the recipe's instantiation params"
        )
    values = {name: available[name] for name in sorted(used)}
    _check_params(values, where)

    aggregation = params.get("aggregation")
    bind_candidate_scores(con, None if aggregation is None else str(aggregation))
    try:
        table = to_arrow(con.sql(sql_text, params=values or None))
    except duckdb.Error as exc:
        raise QueryError(f"{where}: {_duck_message(exc)}") from exc
    return conform(output, _decimals_to_double(output, table), where=source)
