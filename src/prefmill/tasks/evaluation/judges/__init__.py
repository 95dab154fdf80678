"""Judge kinds: one module per kind, each declaring its recipe config, its traits and its work.

A kind module defines ``KIND = JudgeKind(config=..., traits=JudgeTraits(...), run=...)``; the
registry (``registry.py``) finds every module of this package and builds from them the recipe's
``JudgeConfig`` union, ``JUDGE_MODELS``, the built-in template names, fingerprints and the traits
the flows ask about. Adding a judge kind is adding a module here (plus its template and its test).

Kind modules import only pydantic, ``prefmill.section`` and the configs they embed (the step
judges' ``tasks/steps/config.py``) at module level: their work imports the implementation (engines,
torch, transformers, sandboxes) inside functions, so that the recipe can import every kind cheaply.
"""
