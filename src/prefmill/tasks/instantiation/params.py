"""The named ``$parameters`` of the instantiation SQL, with their defaults and checks taken from the
recipe's ``instantiation`` section (``config.py``): that section is the one place a parameter's
default and its allowed values are declared.

``sql_params`` maps a recipe section to ``{$name: value}``; ``DEFAULT_PARAMS`` is that of the default
section; ``check_params`` validates the values the SQL needs in range, given by name (a caller may bind SQL
directly), against the recipe's fields and raises ``QueryError`` naming the ``$parameter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError

from prefmill.errors import QueryError
from prefmill.ids import DEFAULT_SEED
from prefmill.tasks.instantiation.config import Aggregation, InstantiationConfig, SelectionConfig

#: InstantiationConfig fields that are not SQL parameters.
_NOT_PARAMS = ("outputs", "sql", "selection", "memory_limit")

#: $name -> the InstantiationConfig field it comes from, where the two names differ.
_RENAMED = {"strategies": "pair_strategies"}

#: The parameters the built-in SQL needs within the recipe's bounds (a division by $tau, a quantile
#: in range ...); the others are meaningful SQL beyond them (a negative $min_margin keeps ties out
#: all the same), so direct SQL callers may pass them. The bounds themselves are the recipe's.
_CHECKED = frozenset(
    {"tau", "weight_clip", "label_quantile", "diversity_quantile", "label_rule", "strategies"}
)

#: Words for one element of a list parameter, in "unknown <word> 'x'" messages.
_ELEMENT = {"strategies": "pair strategy"}


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` (or of the ``Literal`` inside ``list[...]``)."""
    args = get_args(annotation)
    while args and not all(isinstance(a, str) for a in args):
        args = get_args(args[0])
    return tuple(args)


#: Pair strategies the built-in pairs.sql knows (the recipe's `pair_strategies` choices).
PAIR_STRATEGIES: tuple[str, ...] = _choices(InstantiationConfig.model_fields["pair_strategies"].annotation)

#: How scores.sql combines the judges of a candidate (the recipe's `evaluation.aggregation` choices).
AGGREGATIONS: tuple[str, ...] = _choices(Aggregation)


def sql_params(config: InstantiationConfig, seed: int) -> dict[str, Any]:
    """Every SQL parameter a recipe's instantiation section sets, by its $name in the SQL files."""
    out: dict[str, Any] = {}
    for name in InstantiationConfig.model_fields:
        if name in _NOT_PARAMS:
            continue
        value = getattr(config, name)
        out[next((k for k, v in _RENAMED.items() if v == name), name)] = (
            list(value) if isinstance(value, list | tuple) else value
        )
    out["seed"] = seed
    out.update(config.selection.model_dump())
    return out


#: Parameter values used where the caller sets none (None switches a selection filter off).
DEFAULT_PARAMS: dict[str, Any] = sql_params(InstantiationConfig(), DEFAULT_SEED)


def _bounds(model: type, field: str) -> str:
    """'a number > 0', 'in (0, 0.5]', ... from the pydantic constraints of ``model.field``."""
    lo = hi = None
    for m in model.model_fields[field].metadata:  # type: ignore[attr-defined]
        for attr, side, sign in (("gt", "lo", "("), ("ge", "lo", "["), ("lt", "hi", ")"), ("le", "hi", "]")):
            if getattr(m, attr, None) is not None:
                if side == "lo":
                    lo = (sign, getattr(m, attr))
                else:
                    hi = (sign, getattr(m, attr))
    if lo and hi:
        return f"in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo:
        return f"a number {'>' if lo[0] == '(' else '>='} {lo[1]}"
    if hi:
        return f"a number {'<' if hi[0] == ')' else '<='} {hi[1]}"
    return "a number"


def _problem(name: str, model: type, field: str, value: Any) -> str:
    choices = _choices(model.model_fields[field].annotation)  # type: ignore[attr-defined]
    if name in _ELEMENT:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            return f"parameter ${name} must be a non-empty list, got {value!r}"
        unknown = [v for v in value if v not in choices]
        return f"unknown {_ELEMENT[name]} {', '.join(map(repr, unknown))}; choose from {', '.join(choices)}"
    if choices:
        return f"parameter ${name} must be {' or '.join(map(repr, choices))}, got {value!r}"
    return f"parameter ${name} must be {_bounds(model, field)}, got {value!r}"


def check_params(values: Mapping[str, object], where: str) -> None:
    """Check the values of the ``_CHECKED`` parameters against the recipe's declaration of each (None
    passes: it switches a filter off; so do other names: a custom SQL may add its own parameters)."""
    for name, value in values.items():
        field = _RENAMED.get(name, name)
        if value is None or name not in _CHECKED:
            continue
        if field in InstantiationConfig.model_fields and field not in _NOT_PARAMS:
            model: type = InstantiationConfig
            data: dict[str, Any] = {field: list(value) if isinstance(value, tuple) else value}
        elif field in SelectionConfig.model_fields:
            model, data = SelectionConfig, {field: value}
        else:
            continue
        try:
            model.model_validate(data, strict=True)  # type: ignore[attr-defined]
        except ValidationError:
            raise QueryError(f"{where}: {_problem(name, model, field, value)}") from None
