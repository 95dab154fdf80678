"""Response synthesis: candidates per prompt from policy engines (online) or files (offline).

``online`` (k samples, ladders), ``best_of_n`` (rejection sampling), ``verbalized`` (several responses
with stated probabilities per call), ``offline`` (import), ``reweight`` (log-probs under a policy),
``diversity`` (near-duplicates, distinct-n, embedding spread); ``run`` combines them for one shard,
with the settings declared in ``config``. The names below are imported on first use, so that the
recipe can import ``config`` without the engines behind the work.
"""

from __future__ import annotations

from prefmill.lazy import lazy_exports

_MODULE_OF = {"SYNTHESIS_CODE_VERSION": "online", "synthesize": "online"}

__all__ = sorted(_MODULE_OF)


__getattr__, __dir__ = lazy_exports(__name__, _MODULE_OF)
