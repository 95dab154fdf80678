"""``lists``: (x, y1..yk, ranking), made by ``prefmill/sql/lists.sql``."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="lists",
    doc="(x, y1..yk, ranking)",
    stage="instantiation",
    order=42,
    id_column="list_id",
    sql="lists",
    schema=pa.schema(
        [
            column("list_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("prompt", pa.string()),
            column("candidate_ids", pa.list_(pa.string())),
            column("completions", pa.list_(pa.string())),
            column("scores", pa.list_(pa.float64())),
            column("ranks", pa.list_(pa.int32())),
            column("advantages", pa.list_(pa.float64())),
        ]
    ),
)
