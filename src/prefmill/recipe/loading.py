"""Loading a recipe file: YAML with line numbers, validation errors in one line each."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from prefmill.errors import RecipeError
from prefmill.recipe.model import Recipe
from prefmill.recipe.tree import sections, union_tags
from prefmill.redaction import hide_secrets, inline_secret_option

# -- loading with line numbers ----------------------------------------------------------------


def _node_at(root: yaml.Node | None, loc: Sequence[Any]) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (tags of unions are skipped)."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    node = value if not isinstance(value, yaml.ScalarNode) or part != loc[-1] else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
    return node


#: path of field names and union tags (a validation error's location without list indexes) -> model
_SECTIONS: dict[tuple[str, ...], type[BaseModel]] = {s.path: s.model for s in sections(Recipe) if not s.keyed}


def _section_model(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The recipe model that holds the last field of ``loc``."""
    return _SECTIONS.get(tuple(p for p in loc[:-1] if isinstance(p, str)))


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _section_model(error["loc"])
        allowed = [n for n, f in model.model_fields.items() if not f.exclude] if model else []
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown field{hint}; see docs/recipe.md"
    if kind == "missing":
        return "required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message


_TAGS = union_tags(Recipe)


def _field_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS and out.endswith("]"):
            continue  # discriminator tag pydantic inserts into the location
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _duplicate_key(node: yaml.Node | None) -> tuple[str, int, int] | None:
    """The first key written twice in one mapping of the tree: (key, first line, second line)."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        return key.value, seen[key.value], line
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(reversed(current.value))
    return None


#: A string that is an engine spec with options or an endpoint (``kind:...?...``, ``kind:...@scheme://``).
_SPEC_LIKE = re.compile(r"^[A-Za-z_][\w-]*:\S*(\?|@[A-Za-z][A-Za-z0-9+.-]*://)")


def _refuse_inline_secrets(node: yaml.Node | None, name: str) -> None:
    """An engine spec with a secret option written inline (``?api_key=...``) is refused, by line."""
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            stack.extend(v for _, v in current.value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.ScalarNode) and _SPEC_LIKE.match(str(current.value)):
            option = inline_secret_option(current.value)
            if option is not None:
                raise RecipeError(
                    f"{name} line {current.start_mark.line + 1}: engine option {option} holds a secret; keep "
                    "it out of the recipe: export it in an environment variable and pass api_key_env=VAR"
                )


def _hide_url_secrets(data: Any) -> Any:
    """``data`` with the credentials of every engine endpoint URL hidden (``engines.spec.hide_secrets``):
    the recipe, its flow parameters and version configs never hold them; the engine gets them back."""
    if isinstance(data, dict):
        return {k: _hide_url_secrets(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_hide_url_secrets(v) for v in data]
    if isinstance(data, str) and _SPEC_LIKE.match(data):
        return hide_secrets(data)
    return data


def parse_recipe(text: str, *, name: str = "recipe.yaml", base_dir: str | Path = ".") -> Recipe:
    """Validate recipe YAML text. Errors: ``RecipeError('<name> line N: <field>: <problem>')``."""
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{name}{where}: not valid YAML: {problem}") from None
    duplicate = _duplicate_key(tree)
    if duplicate is not None:
        key, first, second = duplicate
        raise RecipeError(
            f"{name} line {second}: field '{key}' is written twice (lines {first} and {second}); "
            "keep one of them"
        )
    if data is None:
        raise RecipeError(f"{name}: the recipe is empty; `prefmill init quickstart` writes an example")
    if not isinstance(data, dict):
        raise RecipeError(f"{name} line 1: a recipe is a mapping of fields (dataset, prompts, ...)")
    _refuse_inline_secrets(tree, name)
    data = _hide_url_secrets(data)
    data["base_dir"] = str(base_dir)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            node = _node_at(tree, loc)
            line = f" line {node.start_mark.line + 1}" if node is not None else ""
            problems.append(f"{name}{line}: {_field_path(loc)}: {_describe(error)}")
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise RecipeError(problems[0] + more) from None


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(
            f"recipe file not found: {file}; `prefmill init quickstart` writes an example"
        ) from None
    except IsADirectoryError:
        raise RecipeError(f"{file} is a folder, not a recipe file") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_recipe(text, name=str(file), base_dir=file.resolve().parent)
