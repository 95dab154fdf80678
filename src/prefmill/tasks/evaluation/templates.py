"""Jinja prompt templates of the judges: built-in ones ship in ``prefmill/templates/judges/*.j2``; a
recipe may replace any of them with a file of its own.

Templates render with ``StrictUndefined``: a misspelt variable is an error naming the template, not
an empty string in the judge prompt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from prefmill.errors import RecipeError
from prefmill.tasks.evaluation.judges.registry import BUILTIN_TEMPLATES

#: The built-in templates, as the judge kinds declare them.
BUILTIN = BUILTIN_TEMPLATES
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=False, trim_blocks=False, autoescape=False
)


@dataclass(frozen=True)
class Template:
    """A compiled judge template and where it came from."""

    origin: str  # 'builtin:point' or the file path
    text: str
    compiled: jinja2.Template

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **variables: Any) -> str:
        try:
            return self.compiled.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise RecipeError(
                f"judge template {self.origin}: {exc.message}; the variables it may use are "
                f"{', '.join(sorted(variables))}"
            ) from None
        except jinja2.TemplateError as exc:
            raise RecipeError(f"judge template {self.origin}: {exc}") from None


def builtin_text(name: str) -> str:
    return resources.files("prefmill.templates.judges").joinpath(f"{name}.j2").read_text(encoding="utf-8")


def load_template(name: str, override: str | None = None) -> Template:
    """The built-in template ``name`` or, when given, the file ``override`` (an absolute path or one
    relative to the working directory; the flow resolves recipe-relative paths first)."""
    if override is None:
        if name not in BUILTIN:
            raise RecipeError(f"no built-in judge template '{name}' (built-in: {', '.join(BUILTIN)})")
        origin, text = f"builtin:{name}", builtin_text(name)
    else:
        origin = override
        try:
            text = Path(override).read_text(encoding="utf-8")
        except OSError as exc:
            raise RecipeError(
                f"judge template {override}: cannot read it ({exc.strerror or exc}); fix the path in the "
                "recipe (relative paths are relative to the recipe's folder)"
            ) from None
        except UnicodeDecodeError:
            raise RecipeError(f"judge template {override}: not UTF-8 text") from None
    try:
        compiled = _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise RecipeError(f"judge template {origin} line {exc.lineno}: {exc.message}") from None
    return Template(origin, text, compiled)
