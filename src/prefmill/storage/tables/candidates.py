"""``candidates``: one row per response to one prompt (written by synthesis)."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="candidates",
    doc="one response to one prompt",
    stage="synthesis",
    order=20,
    id_column="candidate_id",
    schema=pa.schema(
        [
            column("candidate_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("response", pa.string()),
            column("generator", pa.string(), False),
            column("origin", pa.string(), False),
            column("sampling", pa.string()),
            column("sample_index", pa.int32(), False),
            column("n_tokens", pa.int64()),
            column("prompt_tokens", pa.int64()),
            column("finish_reason", pa.string()),
            column("logprob", pa.float64()),
            column("latency_ms", pa.float64()),
            column("error", pa.string()),
            # Synthesis strategies (issue 3); optional: producers that predate them get nulls.
            column("policy", pa.string(), optional=True),
            column("strategy", pa.string(), optional=True),
            column("policy_logprob", pa.float64(), optional=True),
            column("rating", pa.float64(), optional=True),
            column("stated_probability", pa.float64(), optional=True),
            column("accepted", pa.bool_(), optional=True),
            column("attempts", pa.int32(), optional=True),
            column("duplicate_of", pa.string(), optional=True),
            column("raw", pa.string(), optional=True),
            column("parent_id", pa.string(), optional=True),  # critique-revise: the revised candidate
            column("cost_usd", pa.float64(), optional=True),  # openai engines with a recipe price
        ]
    ),
)
