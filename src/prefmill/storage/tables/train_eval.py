"""``train_eval``: held-out answers of the model before and after training, verified (written by
``prefmill train``)."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="train_eval",
    doc="a held-out answer before or after training",
    stage="train",
    order=51,
    schema=pa.schema(
        [
            column("phase", pa.string(), False),
            column("model", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("prompt", pa.string()),
            column("reference", pa.string()),
            column("response", pa.string()),
            column("extracted", pa.string()),
            column("score", pa.float64()),
            column("n_tokens", pa.int64()),
            column("error", pa.string()),
        ]
    ),
)
