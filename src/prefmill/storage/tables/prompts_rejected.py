"""``prompts_rejected``: one row per input row the prompts stage refused, and why."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="prompts_rejected",
    doc="a refused input row",
    stage="prompts",
    order=11,
    schema=pa.schema(
        [
            column("source", pa.string(), False),
            column("location", pa.string(), False),
            column("reason", pa.string(), False),
            column("raw", pa.string()),
        ]
    ),
)
