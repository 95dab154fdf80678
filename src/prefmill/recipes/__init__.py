"""Built-in recipe templates (`prefmill init TEMPLATE` copies them).

A template is ``<name>.yaml`` in this folder plus the files it names that start with ``<name>-``
(prompts, responses); ``TEMPLATES`` is read from the folder, so adding a template is adding its files.
"""

from __future__ import annotations

from importlib import resources


def template_names() -> tuple[str, ...]:
    """The built-in templates, quickstart first, then by name."""
    names = sorted(
        p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml")
    )
    return tuple(sorted(names, key=lambda n: (n != "quickstart", n)))


TEMPLATES: tuple[str, ...] = template_names()
