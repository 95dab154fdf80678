"""Response synthesis: candidates per prompt from policy engines (online) or files (offline).

``online`` (k samples, ladders), ``best_of_n`` (rejection sampling), ``verbalized`` (several responses
with stated probabilities per call), ``offline`` (import), ``reweight`` (log-probs under a policy),
``diversity`` (near-duplicates, distinct-n, embedding spread); ``run`` combines them for one shard.
"""

from prefmill.tasks.synthesis.online import SYNTHESIS_CODE_VERSION, synthesize

__all__ = ["SYNTHESIS_CODE_VERSION", "synthesize"]
