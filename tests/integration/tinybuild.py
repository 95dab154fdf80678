"""The session's shared tiny build (the ``tiny_build`` fixture in conftest.py): its recipe and what
the fixture hands to tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefmill.flows import BuildSummary

#: The shared tiny build: 3 arithmetic problems and 3 open prompts, 2 samples each at two
#: temperatures, both built-in judges, every output; 2 shards.
TINY_DATASET = "tiny"
TINY_RECIPE = f"""\
dataset: {TINY_DATASET}
seed: 1
shard_size: 3
prompts:
  sources:
    - kind: arithmetic
      n: 3
      seed: 5
    - kind: file
      path: open.jsonl
synthesis:
  k: 2
  temperature: [0.7, 1.0]
  max_new_tokens: 24
  batch_size: 12
evaluation:
  judges: [arithmetic, heuristic]
instantiation:
  outputs: [pairs, points, lists]
"""
TINY_OPEN_PROMPTS = ["Name a colour of the sea.", "Say hello politely.", "Give one tip for sleeping well."]


@dataclass(frozen=True)
class TinyBuild:
    """The shared build: its folder (recipe.yaml, open.jsonl, data/), summary and progress lines."""

    folder: Path
    summary: BuildSummary
    progress: str
    dataset: str = TINY_DATASET

    @property
    def root(self) -> str:
        return str(self.folder / "data")
