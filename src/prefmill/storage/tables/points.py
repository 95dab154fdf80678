"""``points``: (x, y, signal), made by ``prefmill/sql/points.sql``."""

import pyarrow as pa

from prefmill.storage.tables.base import PROMPT_CHAT, PROMPT_TEXT, ExportFormat, Table, assistant, column

TABLE = Table(
    name="points",
    doc="(x, y, signal)",
    stage="instantiation",
    order=41,
    id_column="point_id",
    sql="points",
    schema=pa.schema(
        [
            column("point_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("prompt", pa.string()),
            column("completion", pa.string()),
            column("candidate_id", pa.string(), False),
            column("reward", pa.float64()),
            column("label", pa.bool_()),
            column("criterion", pa.string()),
        ]
    ),
    exports=(
        ExportFormat(
            "trl-unpaired",
            ("prompt", "completion", "label"),
            f"SELECT {PROMPT_TEXT} AS prompt, completion, label FROM source AS s",
            f"SELECT {PROMPT_CHAT} AS prompt, {assistant('completion')} AS completion, label "
            "FROM source AS s",
            "KTOTrainer",
            "prompt/completion/label for KTO, from points",
        ),
    ),
)
