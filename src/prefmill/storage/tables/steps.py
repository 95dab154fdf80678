"""``steps``: one reasoning step of one candidate (written by the steps stage, from candidates)."""

import pyarrow as pa

from prefmill.storage.tables.base import ExportFormat, Table, column

#: One row per candidate whose every step has a label: TRL's stepwise-supervision columns. A step's
#: label is true when every step-level judgment of it says correct (a rollout judge's hard label, else
#: score >= 0.5); only the `step-consensus` judge's rows count when there are any. The judgments are
#: the newest version built from these steps.
STEPWISE_SQL = """
WITH labelled AS (
    SELECT candidate_id, unit_index,
        bool_and(coalesce(
            TRY_CAST(nullif(regexp_extract(raw, '"hard": ([0-9.]+)', 1), '') AS DOUBLE) > 0,
            score >= 0.5)) AS label
    FROM judgments
    WHERE granularity = 'step' AND score IS NOT NULL AND parse_error IS NULL
        AND (judge = 'step-consensus' OR NOT EXISTS (SELECT 1 FROM judgments WHERE judge = 'step-consensus'))
    GROUP BY candidate_id, unit_index
)
SELECT
    (SELECT list_filter(p.messages, lambda m: m.role = 'user')[-1].content
     FROM prompts AS p WHERE p.prompt_id = s.prompt_id) AS prompt,
    list(s.text ORDER BY s.step_index) AS completions,
    list(l.label ORDER BY s.step_index) AS labels,
    s.prompt_id, s.candidate_id
FROM source AS s JOIN labelled AS l ON l.candidate_id = s.candidate_id AND l.unit_index = s.step_index
GROUP BY s.prompt_id, s.candidate_id
HAVING count(*) = max(s.n_steps)
ORDER BY s.prompt_id, s.candidate_id
"""

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
    exports=(
        ExportFormat(
            "trl-stepwise",
            ("prompt", "completions", "labels"),
            STEPWISE_SQL,
            None,
            "PRM training (TRL's stepwise-supervision dataset type)",
            "prompt/completions/labels per step, from steps and their step-level judgments",
        ),
    ),
)
