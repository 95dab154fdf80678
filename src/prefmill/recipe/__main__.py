"""``python -m prefmill.recipe > docs/recipe.md``."""

from prefmill.recipe.reference import reference_markdown

print(reference_markdown())
