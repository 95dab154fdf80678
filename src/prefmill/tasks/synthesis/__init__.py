"""Response synthesis: k candidates per prompt from a policy engine (online) or files (offline)."""

from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION, synthesize

__all__ = ["SYNTHESIS_CODE_VERSION", "synthesize"]
