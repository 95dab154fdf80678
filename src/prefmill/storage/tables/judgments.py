"""``judgments``: one adjudicator's verdict on one unit (written by evaluation)."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="judgments",
    doc="one adjudicator's verdict on one unit",
    stage="evaluation",
    order=30,
    id_column="judgment_id",
    schema=pa.schema(
        [
            column("judgment_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("candidate_id", pa.string(), False),
            column("other_candidate_id", pa.string()),
            column("judge", pa.string(), False),
            column("kind", pa.string(), False),
            column("mode", pa.string(), False),
            column("criterion", pa.string(), False),
            column("granularity", pa.string(), False),
            column("unit_index", pa.int32()),
            column("order", pa.string()),
            column("score", pa.float64()),
            column("prefers_first", pa.float64()),
            column("rationale", pa.string()),
            column("raw", pa.string()),
            column("parse_error", pa.string()),
        ]
    ),
)
