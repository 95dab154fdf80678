"""``pairs``: (x, chosen, rejected), made by ``prefmill/sql/pairs.sql`` then ``selection.sql``."""

import pyarrow as pa

from prefmill.storage.tables.base import PROMPT_CHAT, PROMPT_TEXT, ExportFormat, Table, assistant, column

TABLE = Table(
    name="pairs",
    doc="(x, chosen, rejected)",
    stage="instantiation",
    order=40,
    id_column="pair_id",
    sql="pairs",
    selection_sql="selection",
    row_order=("prompt_id", "criterion", "strategy", "chosen_id", "rejected_id"),
    schema=pa.schema(
        [
            column("pair_id", pa.string(), False),
            column("prompt_id", pa.string(), False),
            column("prompt", pa.string()),
            column("chosen", pa.string()),
            column("rejected", pa.string()),
            column("chosen_id", pa.string(), False),
            column("rejected_id", pa.string(), False),
            column("chosen_score", pa.float64()),
            column("rejected_score", pa.float64()),
            column("margin", pa.float64()),
            column("soft_label", pa.float64()),
            column("uncertainty", pa.float64()),
            column("criterion", pa.string()),
            column("weight", pa.float64()),
            column("strategy", pa.string()),
        ]
    ),
    exports=(
        ExportFormat(
            "trl-preference",
            ("prompt", "chosen", "rejected"),
            f"SELECT {PROMPT_TEXT} AS prompt, chosen, rejected FROM source AS s",
            f"SELECT {PROMPT_CHAT} AS prompt, {assistant('chosen')} AS chosen, "
            f"{assistant('rejected')} AS rejected FROM source AS s",
            "DPOTrainer (and other preference trainers: IPO, ORPO, CPO, ...)",
            "prompt/chosen/rejected, from pairs",
        ),
        ExportFormat(
            "trl-reward",
            ("chosen", "rejected", "margin"),
            f"SELECT concat_ws('\n\n', {PROMPT_TEXT}, chosen) AS chosen, "
            f"concat_ws('\n\n', {PROMPT_TEXT}, rejected) AS rejected, margin FROM source AS s",
            f"SELECT list_concat({PROMPT_CHAT}, {assistant('chosen')}) AS chosen, "
            f"list_concat({PROMPT_CHAT}, {assistant('rejected')}) AS rejected, margin FROM source AS s",
            "RewardTrainer (implicit prompt; margin is used when present)",
            "implicit-prompt chosen/rejected + margin, from pairs",
        ),
    ),
)
