-- prompts_without_pairs: the prompts that got no pair, grouped by the first reason in pipeline order.
--
-- Inputs (views): prompts, candidates, candidate_score_values (score_values.sql), pairs (the kept
--         pairs).
-- Parameters: none.
--
-- Output: one row per reason that applies to at least one prompt, in pipeline order.
--   reason     VARCHAR  no_candidates (the prompt got none), all_failed (every candidate failed),
--                       one_usable (a single usable candidate), not_scored (no criterion has two
--                       scored candidates), tied (every criterion's scored candidates score the same),
--                       not_selected (pairs could be made, but the strategies made none or selection
--                       removed them all)
--   n_prompts  BIGINT
--   examples   VARCHAR[]  up to 3 prompt_ids (the smallest)
WITH usable AS (
    SELECT prompt_id, count(*) AS n_rows, count(*) FILTER (WHERE error IS NULL AND response IS NOT NULL) AS n_ok
    FROM candidates
    GROUP BY prompt_id
),
groups AS (
    SELECT prompt_id, criterion, count(*) AS n, count(DISTINCT score) AS distinct_scores
    FROM candidate_score_values
    GROUP BY prompt_id, criterion
),
per_prompt AS (
    SELECT
        prompt_id,
        bool_or(n >= 2) AS two_scored,
        bool_or(n >= 2 AND distinct_scores >= 2) AS has_gap
    FROM groups
    GROUP BY prompt_id
),
classified AS (
    SELECT
        p.prompt_id,
        CASE
            WHEN u.prompt_id IS NULL THEN 'no_candidates'
            WHEN u.n_ok = 0 THEN 'all_failed'
            WHEN u.n_ok = 1 THEN 'one_usable'
            WHEN NOT coalesce(s.two_scored, false) THEN 'not_scored'
            WHEN NOT s.has_gap THEN 'tied'
            ELSE 'not_selected'
        END AS reason
    FROM prompts AS p
    LEFT JOIN usable AS u ON u.prompt_id = p.prompt_id
    LEFT JOIN per_prompt AS s ON s.prompt_id = p.prompt_id
    WHERE p.prompt_id NOT IN (SELECT DISTINCT prompt_id FROM pairs)
)
SELECT
    reason,
    count(*)::BIGINT AS n_prompts,
    list(prompt_id ORDER BY prompt_id)[1:3] AS examples
FROM classified
GROUP BY reason
ORDER BY list_position(
    ['no_candidates', 'all_failed', 'one_usable', 'not_scored', 'tied', 'not_selected'], reason
)
