"""The tree of recipe models, walked from ``Recipe``: every section with its path, for the loader's
error messages and the reference docs (so that neither lists the sections by hand)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

#: What a mapping's key stands for in the docs titles (`prices.<model>`); default `<name>`.
_KEY_NAMES = {"prices": "model"}


@dataclass(frozen=True)
class Section:
    """One recipe model in the tree."""

    path: tuple[str, ...]  # field names and union tags, as in a validation error's location
    title: str  # as the docs write it: `synthesis.policies[]`, `evaluation.judges[] with kind: llm`
    model: type[BaseModel]
    keyed: bool = False  # under a mapping (its path holds no key, so errors cannot name it)


def tag_of(model: type[BaseModel]) -> str | None:
    """The discriminator value of a union member (its `kind` literal), if it has one."""
    field = model.model_fields.get("kind")
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    (tag,) = get_args(field.annotation)
    return str(tag)


def _members(annotation: Any) -> Iterator[tuple[str, Any]]:
    """(how it is reached: '' | '[]' | '{}', model or union member) inside a field annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _members(get_args(annotation)[0])
    elif origin is Union or origin is types.UnionType:
        for arg in get_args(annotation):
            yield from _members(arg)
    elif origin is list:
        for how, inner in _members(get_args(annotation)[0]):
            yield ("[]" + how, inner)
    elif origin is dict:
        for how, inner in _members(get_args(annotation)[1]):
            yield ("{}" + how, inner)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield ("", annotation)


def sections(root: type[BaseModel]) -> list[Section]:
    """Every model under ``root``, depth first in field order, each once."""
    out: list[Section] = []
    seen: set[type[BaseModel]] = set()

    def visit(section: Section) -> None:
        if section.model in seen:
            return
        seen.add(section.model)
        out.append(section)
        for name, field in section.model.model_fields.items():
            if field.exclude:
                continue
            base = f"{section.title}.{name}" if section.path else name
            for how, model in _members(field.annotation):
                path, title = (*section.path, name), base
                if how.startswith("{}"):
                    title += f".<{_KEY_NAMES.get(name, 'name')}>"
                elif how.startswith("[]"):
                    title += "[]"
                tag = tag_of(model)
                if tag is not None:
                    path, title = (*path, tag), f"{title} with kind: {tag}"
                visit(Section(path, title, model, keyed=section.keyed or how.startswith("{}")))

    visit(Section((), "(top level)", root))
    return out


def union_tags(root: type[BaseModel]) -> frozenset[str]:
    """The discriminator tags pydantic inserts into error locations under ``root``."""
    return frozenset(tag for s in sections(root) if len(s.path) and (tag := tag_of(s.model)) == s.path[-1])
