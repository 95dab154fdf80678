"""``steps``: one reasoning step of one candidate (written by the steps stage, from candidates)."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="steps",
    doc="one reasoning step of one candidate",
    stage="evaluation",
    order=31,
    id_column="step_id",
    schema=pa.schema(
        [
            column("step_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("candidate_id", pa.string(), False),
            column("step_index", pa.int32(), False),
            column("n_steps", pa.int32(), False),
            column("text", pa.string(), False),
            column("char_start", pa.int32(), False),
            column("char_end", pa.int32(), False),
            column("prefix", pa.string(), False),
        ]
    ),
)
