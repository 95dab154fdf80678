"""Prompt-source kinds: one module per kind, each declaring its recipe config and its work.

A kind module defines ``KIND = SourceKind(config=..., load=..., input_file=...)``; the registry
(``registry.py``) finds every module of this package and builds the recipe's ``PromptSource`` union
from them. Kind modules import only pydantic and ``prefmill.section`` at module level.
"""
