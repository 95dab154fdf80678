"""``checkpoints``: one row per trained checkpoint (written by ``prefmill train``; the model folder is
at ``path``)."""

import pyarrow as pa

from prefmill.storage.tables.base import Table, column

TABLE = Table(
    name="checkpoints",
    doc="a trained model",
    stage="train",
    order=50,
    schema=pa.schema(
        [
            column("checkpoint_id", pa.string(), False),
            column("method", pa.string(), False),
            column("base_model", pa.string(), False),
            column("path", pa.string(), False),
            column("model_class", pa.string()),
            column("train_table", pa.string(), False),
            column("train_version", pa.string(), False),
            column("train_rows", pa.int64()),
            column("steps", pa.int64()),
            column("train_loss", pa.float64()),
            column("losses", pa.list_(pa.float64())),
            column("seconds", pa.float64()),
            column("trl_version", pa.string()),
            column("eval_n", pa.int64()),
            column("accuracy_before", pa.float64()),
            column("accuracy_after", pa.float64()),
        ]
    ),
)
