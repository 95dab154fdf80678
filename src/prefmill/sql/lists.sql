-- lists: one ranked group per (prompt, criterion) with at least 2 scored candidates.
--
-- Inputs: view candidate_scores (scores.sql). Macro content_id(list) = first 16 hex chars of sha256
--         of the list's canonical JSON, equal to prefmill.ids.content_id (the runner defines it).
-- Parameters: none.
--
-- Output (the `lists` table, plus criterion):
--   list_id        VARCHAR    content_id([prompt_id, criterion, candidate_ids...])
--   prompt_id      VARCHAR
--   prompt         VARCHAR    last user message
--   candidate_ids  VARCHAR[]  ordered by score desc, ties by candidate_id; every list column below
--                             follows this same order
--   completions    VARCHAR[]  responses
--   scores         DOUBLE[]
--   ranks          INTEGER[]  1-based competition ranking: tied scores share a rank ("1224")
--   advantages     DOUBLE[]   (score - mean) / (stddev_pop + 1e-6) within the group (GRPO-style);
--                             all zeros when every score in the group is equal
--   criterion      VARCHAR
--   advantages_mean DOUBLE[]  score - mean within the group (Dr. GRPO: no division by the std)
--   zero_variance  BOOLEAN    every score in the group is equal: the group carries no learning signal
--                             for GRPO (its advantages are all zero)
--   group_size     INTEGER    candidates in the group
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE.
WITH grouped AS (
    SELECT
        *,
        rank() OVER (PARTITION BY prompt_id, criterion ORDER BY score DESC) AS rank,
        avg(score) OVER g AS mean_score,
        stddev_pop(score) OVER g AS sd_score,
        min(score) OVER g AS min_score,
        max(score) OVER g AS max_score,
        count(*) OVER g AS n
    FROM candidate_scores
    WINDOW g AS (PARTITION BY prompt_id, criterion)
),
ranked_lists AS (
    SELECT
        prompt_id,
        criterion,
        any_value(prompt) AS prompt,
        list(candidate_id ORDER BY score DESC, candidate_id) AS candidate_ids,
        list(response ORDER BY score DESC, candidate_id) AS completions,
        list(score ORDER BY score DESC, candidate_id) AS scores,
        list(rank::INTEGER ORDER BY score DESC, candidate_id) AS ranks,
        list(
            CASE
                WHEN min_score = max_score THEN 0.0
                ELSE (score - mean_score) / (sd_score + 1e-6)
            END
            ORDER BY score DESC, candidate_id
        ) AS advantages,
        list(
            CASE WHEN min_score = max_score THEN 0.0 ELSE score - mean_score END
            ORDER BY score DESC, candidate_id
        ) AS advantages_mean,
        bool_and(min_score = max_score) AS zero_variance,
        count(*)::INTEGER AS group_size
    FROM grouped
    WHERE n >= 2
    GROUP BY prompt_id, criterion
)
SELECT
    content_id(list_concat([prompt_id, criterion], candidate_ids)) AS list_id,
    prompt_id,
    prompt,
    candidate_ids,
    completions,
    scores,
    ranks,
    advantages,
    criterion,
    advantages_mean,
    zero_variance,
    group_size
FROM ranked_lists
ORDER BY prompt_id, criterion
