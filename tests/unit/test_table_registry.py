"""The table registry: one module per table, and every list of table names built from it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

import prefmill.storage.tables as registry
from prefmill.exports.formats import FORMATS, format_sql
from prefmill.recipe.model import ExportConfig
from prefmill.sql import sql_names
from prefmill.storage.tables import EXPORT_FORMATS, ID_COLUMNS, OUTPUTS, SCHEMAS, TABLE_ORDER, TABLES
from prefmill.tasks.instantiation import instantiate_with_report
from prefmill.tasks.instantiation.config import InstantiationConfig

DOCS = Path(__file__).parents[2] / "docs" / "tables.md"


def test_every_module_is_one_table_in_stage_order() -> None:
    modules = sorted(
        p.stem for p in Path(registry.__file__).parent.glob("*.py") if p.stem not in ("base", "__init__")
    )
    assert sorted(TABLES) == modules
    assert TABLE_ORDER[:8] == (
        "prompts",
        "prompts_rejected",
        "candidates",
        "judgments",
        "steps",
        "pairs",
        "points",
        "lists",
    )
    assert list(SCHEMAS) == list(TABLE_ORDER)
    assert set(ID_COLUMNS) <= set(TABLES)
    assert registry.order_key("zzz") > registry.order_key("train_eval") > registry.order_key("prompts")


def test_outputs_are_the_tables_with_built_in_sql() -> None:
    assert OUTPUTS == ("pairs", "points", "lists")
    for name in OUTPUTS:
        assert TABLES[name].sql in sql_names() and TABLES[name].stage == "instantiation"
    assert TABLES["pairs"].selection_sql in sql_names()


def test_recipe_choices_come_from_the_registry() -> None:
    assert InstantiationConfig().outputs == list(OUTPUTS)
    assert get_args(get_args(InstantiationConfig.model_fields["outputs"].annotation)[0]) == OUTPUTS
    with pytest.raises(ValidationError):
        InstantiationConfig(outputs=["judgments"])
    assert set(InstantiationConfig(sql={"selection": "s.sql", "lists": "l.sql"}).sql) == {
        "selection",
        "lists",
    }
    assert get_args(ExportConfig.model_fields["format"].annotation) == tuple(EXPORT_FORMATS)
    for name in EXPORT_FORMATS:
        assert f"`{name}`" in (ExportConfig.model_fields["format"].description or "")


def test_export_formats_are_declared_by_the_table_they_read() -> None:
    assert FORMATS is EXPORT_FORMATS
    assert {f.name: f.table for f in FORMATS.values()} == {
        "trl-prompt-only": "prompts",
        "trl-preference": "pairs",
        "trl-reward": "pairs",
        "trl-unpaired": "points",
        "trl-stepwise": "steps",
        "rows": None,
    }
    for fmt in FORMATS.values():
        assert fmt in (*(f for t in TABLES.values() for f in t.exports), registry.ROWS)
        assert format_sql(fmt, fmt.table or "lists", conversational=False) == fmt.sql
    assert FORMATS["trl-preference"].reads_prompts and not FORMATS["trl-prompt-only"].reads_prompts


def test_a_new_table_module_is_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "steps.py").write_text(
        textwrap.dedent(
            """
            import pyarrow as pa
            from prefmill.storage.tables.base import Table, column

            TABLE = Table(
                name="steps",
                stage="evaluation",
                order=31,
                id_column="step_id",
                schema=pa.schema([column("step_id", pa.string(), False)]),
            )
            """
        )
    )
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    found = registry._discover()
    assert list(found).index("steps") == list(found).index("judgments") + 1
    assert found["steps"].id_column == "step_id"


def test_a_misnamed_table_module_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "oops.py").write_text("TABLE = None\n")
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    with pytest.raises(TypeError, match=r"oops must define TABLE = Table\(name='oops'"):
        registry._discover()


def test_instantiation_refuses_a_table_without_sql() -> None:
    import duckdb

    from prefmill.errors import QueryError

    with pytest.raises(QueryError, match=r"unknown instantiation output 'judgments'.*pairs, points, lists"):
        instantiate_with_report(duckdb.connect(), "judgments", {})


def test_docs_describe_every_table_and_column() -> None:
    sections = {s.split("`")[1]: s for s in re.split(r"^## ", DOCS.read_text(), flags=re.M)[1:] if "`" in s}
    for name, table in TABLES.items():
        assert name in sections, f"docs/tables.md has no section for table '{name}'"
        documented = {
            col
            for line in sections[name].splitlines()
            if line.startswith("| `")
            for col in re.findall(r"`([^`]+)`", line.split("|")[1])
        }
        missing = [c for c in table.schema.names if c not in documented]
        assert not missing, f"docs/tables.md, table '{name}': columns {missing} are not described"
