"""Run instantiation SQL: scored candidates -> the ``pairs``, ``points`` or ``lists`` table.

The caller binds the input views ``prompts``, ``candidates`` and ``judgments`` on a DuckDB connection
(and, for the 'diverse' pair strategy, the table ``candidate_embeddings``; see ``embeddings.py``).
``instantiate`` then defines the ``content_id`` macro and the ``candidate_scores`` view (scores.sql),
runs the output's SQL (a built-in file or a user's SQL text) with the named parameters that SQL uses,
runs the selection SQL over pairs (selection.sql), removes the rows that carry a ``drop_reason`` and
counts them by reason, and returns an Arrow table checked against the output's schema.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from dataclasses import field as dc_field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from prefmill.errors import QueryError
from prefmill.sql import define_judgment_macros, read_sql
from prefmill.storage.schemas import conform, schema_for
from prefmill.storage.tables import OUTPUTS, TABLES
from prefmill.tasks.instantiation.output_stats import OutputStats
from prefmill.tasks.instantiation.params import AGGREGATIONS, DEFAULT_PARAMS, check_params
from prefmill.tasks.instantiation.snapshot import SCORE_VIEWS, scores_computed_once, snapshot_for, view_sql

#: Bump when the built-in SQL or this runner changes what a given input produces.
INSTANTIATION_CODE_VERSION = "2"

#: Columns of the ``candidate_embeddings`` table the 'diverse' strategy reads.
EMBEDDINGS_SCHEMA = pa.schema(
    [pa.field("candidate_id", pa.string()), pa.field("embedding", pa.list_(pa.float32()))]
)

#: Columns of the ``candidate_steps`` table the 'step_dpo' strategy reads (from the ``steps`` table).
STEPS_SCHEMA = pa.schema(
    [
        pa.field("candidate_id", pa.string()),
        pa.field("step_index", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("char_start", pa.int32()),
    ]
)

#: Row-order column the runner adds to pairs before selection (and removes after).
_ROW = "__prefmill_row"

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


def _duck_message(exc: BaseException) -> str:
    """DuckDB's message on one line: its first line, plus the ``LINE n:`` pointer when there is one."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    pointer = next((line for line in lines[1:] if line.startswith("LINE ")), None)
    return lines[0] + (f" ({pointer})" if pointer else "")


@contextmanager
def _named_errors(where: str, also: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """DuckDB's errors raised inside (and those of the types ``also``), as a ``QueryError`` naming
    ``where`` on one line."""
    try:
        yield
    except (duckdb.Error, *also) as exc:
        raise QueryError(f"{where}: {_duck_message(exc)}") from exc


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


WEIGHTS_SCHEMA = pa.schema([pa.field("criterion", pa.string()), pa.field("weight", pa.float64())])


def weights_table(weights: Mapping[str, float] | list[Mapping[str, object]] | None) -> pa.Table:
    """The ``criterion_weights`` table from ``{criterion: weight}`` (or a list of such rows)."""
    if not weights:
        return WEIGHTS_SCHEMA.empty_table()
    if isinstance(weights, Mapping):
        rows = [{"criterion": c, "weight": float(w)} for c, w in sorted(weights.items())]
    else:
        rows = [dict(r) for r in weights]
    return pa.Table.from_pylist(rows, schema=WEIGHTS_SCHEMA)


#: The DuckDB variable set on a connection once its score macros and views are defined.
_BOUND = "__prefmill_scores_bound"


def _scores_bound(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``bind_candidate_scores`` already defined the macros and views on ``con`` (one cheap
    query, where defining them again costs DuckDB ~40 ms of parsing and binding per output)."""
    return bool(con.execute(f"SELECT getvariable('{_BOUND}')").fetchall()[0][0])


def bind_candidate_scores(
    con: duckdb.DuckDBPyConnection,
    criterion_weights: Mapping[str, float] | None = None,
    aggregation: str | None = None,
) -> None:
    """Define the ``content_id`` macro, the ``criterion_weights`` table and the views
    ``candidate_score_values`` (score_values.sql: the scores without their texts) and
    ``candidate_scores`` (scores.sql: the same rows with the prompt and response) on ``con``.

    ``prompts``, ``candidates`` and ``judgments`` must already be queryable on ``con``. ``aggregation``
    (one of ``AGGREGATIONS``) sets the DuckDB variable scores.sql reads to combine judges; None keeps
    the connection's setting (``mean`` when unset).
    """
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise QueryError(
            f"instantiation: aggregation {aggregation!r} is not one of {', '.join(AGGREGATIONS)}; "
            "fix evaluation.aggregation in the recipe"
        )
    try:
        if aggregation is not None:
            con.execute(f"SET VARIABLE aggregation = '{aggregation}'")
        con.register("criterion_weights", weights_table(criterion_weights))
        if _scores_bound(con):  # the macros and views name their inputs: defining them again is the same
            return
        con.execute(CONTENT_ID_MACRO)
        define_judgment_macros(con)
        for name, sql_name in SCORE_VIEWS:
            con.execute(view_sql(name, sql_name))
        con.execute(f"SET VARIABLE {_BOUND} = true")
    except (duckdb.Error, QueryError) as exc:
        raise QueryError(
            "instantiation: cannot create view candidate_scores from prefmill/sql/scores.sql "
            f"(over score_values.sql): {_duck_message(exc)}; "
            "bind the views prompts, candidates and judgments first"
        ) from exc


def _has_relation(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = $name", params={"name": name}
    ).fetchall()
    return bool(found[0][0])


def bind_embeddings(con: duckdb.DuckDBPyConnection, table: pa.Table | None = None) -> None:
    """Register ``candidate_embeddings`` (candidate_id, embedding); an empty one when ``table`` is None
    and the connection has none yet."""
    if table is None:
        if _has_relation(con, "candidate_embeddings"):
            return
        table = EMBEDDINGS_SCHEMA.empty_table()
    con.register("candidate_embeddings", table)


def bind_steps(con: duckdb.DuckDBPyConnection, table: pa.Table | None = None) -> None:
    """Register ``candidate_steps`` (``STEPS_SCHEMA``'s columns of a steps table); an empty one when
    ``table`` is None and the connection has none yet."""
    if table is None:
        if _has_relation(con, "candidate_steps"):
            return
        table = STEPS_SCHEMA.empty_table()
    con.register("candidate_steps", table.select(STEPS_SCHEMA.names))


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


@dataclass
class Instantiated:
    """An output table and what selection removed from it."""

    table: pa.Table
    removed: dict[str, int] = dc_field(default_factory=dict)

    @property
    def rows_before_selection(self) -> int:
        return self.table.num_rows + sum(self.removed.values())


#: Rows per Arrow batch when an output is streamed out of DuckDB.
BATCH_ROWS = 100_000


@dataclass
class InstantiatedStream:
    """An output's rows, streamed out of DuckDB in checked batches: what the flow writes part by part.

    ``batches()`` runs ``query`` (with ``values``) and yields the kept rows in output order, each batch
    cast to the table's schema (an empty output yields one empty batch); the rows with a
    ``drop_reason`` are counted in ``removed`` and left out, and the kept ones in ``stats``. Those,
    ``rows`` and ``stats.result()`` are final once ``batches()`` has run to the end. The rows are
    never kept in a table of their own: DuckDB sorts them (spilling past its memory limit) as they
    go out. ``finish`` (once, at the end of the first run) puts back what the query needed: the
    scores' snapshot becomes the views again."""

    con: duckdb.DuckDBPyConnection
    output: str
    source: str  # the SQL file, in schema errors
    where: str  # the SQL's part in the build, in DuckDB's errors
    query: str
    values: dict[str, object]
    finish: Callable[[], None] = lambda: None
    rows: int = 0
    removed: dict[str, int] = dc_field(default_factory=dict)
    stats: OutputStats = dc_field(init=False)

    def __post_init__(self) -> None:
        self.stats = OutputStats(self.output)

    @property
    def rows_before_selection(self) -> int:
        return self.rows + sum(self.removed.values())

    def batches(self, rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        self.rows, self.removed, self.stats = 0, {}, OutputStats(self.output)
        removed: Counter[str] = Counter()
        try:
            with _named_errors(self.where):  # DuckDB runs the query's first part here
                reader = self.con.sql(self.query, params=self.values or None).to_arrow_reader(rows)
            empty = True
            for batch in _reading(reader, self.where):
                table = _split_dropped(pa.Table.from_batches([batch]), removed)
                if table.num_rows:
                    empty = False
                    yield self._counted(table)
            if empty:
                yield self._counted(_split_dropped(reader.schema.empty_table(), removed))
        finally:
            self.finish()
            self.finish = lambda: None
        self.removed = dict(sorted(removed.items()))

    def _counted(self, table: pa.Table) -> pa.Table:
        checked = conform(self.output, _decimals_to_double(self.output, table), where=self.source)
        self.rows += checked.num_rows
        self.stats.add(checked)
        return checked

    def table(self) -> pa.Table:
        return pa.concat_tables(list(self.batches()))


def _reading(reader: pa.RecordBatchReader, where: str) -> Iterator[pa.RecordBatch]:
    """The reader's batches, DuckDB's errors (raised as the query runs) named as the output's. Past
    the first batch they reach Python through Arrow's stream, as ``OSError`` with DuckDB's message."""
    while True:
        with _named_errors(where, also=(OSError,)):
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
        yield batch


def _params_for(sql_text: str, params: Mapping[str, object], where: str) -> dict[str, object]:
    used = sql_parameters(sql_text, where=where)
    available = {**DEFAULT_PARAMS, **params}
    missing = sorted(used - available.keys())
    if missing:
        raise QueryError(
            f"{where}: parameter(s) {', '.join('$' + m for m in missing)} are used but not set; "
            "set them in the recipe's instantiation params"
        )
    values = {name: available[name] for name in sorted(used)}
    check_params(values, where)
    return values


def _split_dropped(table: pa.Table, removed: Counter[str]) -> pa.Table:
    """Remove rows with a ``drop_reason`` (counted by reason into ``removed``), that column and the
    runner's row-order column."""
    hidden = [c for c in ("drop_reason", _ROW) if c in table.column_names]
    if "drop_reason" in hidden:
        reasons = table.column("drop_reason")
        if reasons.null_count != table.num_rows:
            for c in pc.value_counts(reasons.drop_null()).to_pylist():
                removed[str(c["values"])] += int(c["counts"])
            table = table.filter(pc.is_null(reasons))
    return table.drop_columns(hidden) if hidden else table


def _keep(
    con: duckdb.DuckDBPyConnection, name: str, sql_text: str, values: dict[str, object], where: str
) -> None:
    """Run ``sql_text`` into the temporary table ``name`` (spilled past the memory limit)."""
    with _named_errors(where):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS\n{sql_text}\n", values or None)


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]


#: The temporary table of the rows selection reads (pairs before selection).
_MADE = "__prefmill_output"


def instantiate_stream(
    con: duckdb.DuckDBPyConnection,
    output: str,
    params: Mapping[str, object],
    sql_text: str | None = None,
    *,
    sql_file: str | None = None,
    selection_text: str | None = None,
    selection_file: str | None = None,
) -> InstantiatedStream:
    """Plan the ``output`` table (one of ``OUTPUTS``: pairs, points, lists) over the views on ``con``;
    its rows stream out of ``InstantiatedStream.batches``.

    Runs the table's built-in SQL (``prefmill/sql/<output>.sql``, named by its module in
    ``prefmill.storage.tables``), or ``sql_text`` (a user's SQL file, named ``sql_file`` in error
    messages) when given; for a table with selection (pairs), then the selection SQL (built-in
    ``selection.sql`` or ``selection_text``) over the result. ``params`` override ``DEFAULT_PARAMS``;
    only the ones each SQL uses are passed. Rows with a ``drop_reason`` are left out and counted. The
    batches are checked and cast with ``schemas.conform``. Only the rows selection reads are kept (a
    temporary table, spilled past the memory limit); the SQL is planned here, so that its errors come
    before anything is written.
    """
    if output not in OUTPUTS:
        raise QueryError(f"unknown instantiation output '{output}': choose one of {', '.join(OUTPUTS)}")
    spec = TABLES[output]
    builtin = sql_text is None
    if sql_text is None:
        sql_text = read_sql(spec.sql)  # type: ignore[arg-type]
        source = f"prefmill/sql/{spec.sql}.sql"
    else:
        source = sql_file or "custom SQL"
    where = f"instantiation of '{output}' ({source})"
    values = _params_for(sql_text, params, where)

    weights = {**DEFAULT_PARAMS, **params}.get("criterion_weights")
    aggregation = params.get("aggregation")
    bind_candidate_scores(con, weights, None if aggregation is None else str(aggregation))  # type: ignore[arg-type]
    bind_embeddings(con)
    bind_steps(con)
    scores = ExitStack()
    try:
        with _named_errors(where):
            scores.enter_context(scores_computed_once(con, snapshot_for(output, values, sql_text, builtin)))
        if spec.selection_sql is None:  # the output SQL's rows, streamed as they are made
            _bind(con, sql_text, values, where)
            return InstantiatedStream(con, output, source, where, sql_text, values, finish=scores.close)
        _keep(con, _MADE, sql_text, values, where)  # selection reads the rows before it: kept once
    except BaseException:
        scores.close()
        raise
    scores.close()
    if selection_text is None:
        selection_text = read_sql(spec.selection_sql)
        selection_source = f"prefmill/sql/{spec.selection_sql}.sql"
    else:
        selection_source = selection_file or "custom selection SQL"
    swhere = f"selection of '{output}' ({selection_source})"
    svalues = _params_for(selection_text, params, swhere)
    implicit = "" if "implicit_margin" in _columns(con, _MADE) else ", NULL::DOUBLE AS implicit_margin"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW pairs_unfiltered AS SELECT *{implicit}, rowid AS {_ROW} FROM {_MADE}"
    )
    columns = _bind(con, selection_text, svalues, swhere)
    order = _ROW if _ROW in columns else None  # selection SQL keeping the row numbers keeps their order
    if builtin and spec.row_order:  # the built-in SQL leaves its rows unordered: one sort, here
        order = ", ".join(spec.row_order)
    query = selection_text
    if order is not None:
        query = f"SELECT * FROM (\n{_TRAILING_SEMICOLON.sub('', selection_text)}\n) ORDER BY {order}"
    return InstantiatedStream(con, output, source, swhere, query, svalues)  # reads pairs_unfiltered


#: A statement's closing semicolon (and what follows it: space, comments), cut before it is nested.
_TRAILING_SEMICOLON = re.compile(r";(\s|--[^\n]*)*\Z")


def _bind(con: duckdb.DuckDBPyConnection, sql_text: str, values: dict[str, object], where: str) -> list[str]:
    """Plan ``sql_text`` without running it (its errors now, not midway through the writing); its
    columns."""
    with _named_errors(where):
        return list(con.sql(sql_text, params=values or None).columns)


def instantiate_with_report(
    con: duckdb.DuckDBPyConnection,
    output: str,
    params: Mapping[str, object],
    sql_text: str | None = None,
    *,
    sql_file: str | None = None,
    selection_text: str | None = None,
    selection_file: str | None = None,
) -> Instantiated:
    """``instantiate_stream``, read into one Arrow table."""
    stream = instantiate_stream(
        con,
        output,
        params,
        sql_text,
        sql_file=sql_file,
        selection_text=selection_text,
        selection_file=selection_file,
    )
    return Instantiated(stream.table(), stream.removed)


def instantiate(
    con: duckdb.DuckDBPyConnection,
    output: str,
    params: Mapping[str, object],
    sql_text: str | None = None,
    *,
    sql_file: str | None = None,
) -> pa.Table:
    """``instantiate_with_report`` without the report: the output table after selection.

    ``params['criterion_weights']`` ({criterion: weight}) fills the ``criterion_weights`` table that
    scores.sql reads for weighted scalarisation."""
    return instantiate_with_report(con, output, params, sql_text, sql_file=sql_file).table
