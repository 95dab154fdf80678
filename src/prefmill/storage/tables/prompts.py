"""``prompts``: one row per prompt (written by the prompts stage)."""

import pyarrow as pa

from prefmill.storage.tables.base import MESSAGE, ExportFormat, Table, chat_text, column

TABLE = Table(
    name="prompts",
    doc="a prompt",
    stage="prompts",
    order=10,
    id_column="prompt_id",
    schema=pa.schema(
        [
            column("prompt_id", pa.string(), False),
            column("messages", pa.list_(MESSAGE), False),
            column("source", pa.string(), False),
            column("reference", pa.string()),
            column("rubric", pa.string()),
            column("meta", pa.string()),
        ]
    ),
    exports=(
        ExportFormat(
            "trl-prompt-only",
            ("prompt", "reference", "prompt_id"),
            f"SELECT {chat_text('messages')} AS prompt, reference, prompt_id FROM source AS s",
            "SELECT messages AS prompt, reference, prompt_id FROM source AS s",
            "GRPOTrainer / RLOOTrainer (reference and prompt_id reach the reward functions)",
            "prompt + reference for GRPO/RLOO reward functions, from prompts",
        ),
    ),
)
