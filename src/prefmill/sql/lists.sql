-- lists: one ranked group per (prompt, criterion) with at least 2 scored candidates.
--
-- Inputs: view candidate_score_values (score_values.sql: candidate_scores without its texts), views
--         candidates and prompts (the texts). Macro content_id(list) = first 16 hex chars of sha256
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
-- Plan: one GROUP BY per (prompt, criterion) gathers the group's candidates once, then sorts them
-- into list order, with the group's range; every list column, and the mean and spread, come from
-- that one list. Memory stays within DuckDB's memory_limit (the grouping spills to disk).
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE.
WITH responses AS (
    SELECT candidate_id, response FROM candidates WHERE error IS NULL AND response IS NOT NULL
),
prompt_texts AS (
    -- the last user message, once per prompt (not once per output row)
    SELECT prompt_id, list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt FROM prompts
),
groups AS (
    SELECT
        s.prompt_id,
        s.criterion,
        -- sorted after grouping, not with list(... ORDER BY ...): an ordered aggregate holding the
        -- texts cannot spill, and ran out of memory at 10M candidates; structs sort field by field,
        -- so the key -score then the (unique) id give score descending, ties by candidate_id
        list_sort(list({'key': -s.score, 'id': s.candidate_id, 'response': c.response, 'score': s.score}))
            AS members,
        min(s.score) = max(s.score) AS zero_variance,
        count(*)::INTEGER AS group_size
    FROM candidate_score_values AS s
    JOIN responses AS c ON c.candidate_id = s.candidate_id
    GROUP BY s.prompt_id, s.criterion
    HAVING count(*) >= 2
),
ranked_lists AS (
    SELECT
        prompt_id,
        criterion,
        list_transform(members, lambda m: m.id) AS candidate_ids,
        list_transform(members, lambda m: m.response) AS completions,
        list_transform(members, lambda m: m.score) AS scores,
        zero_variance,
        group_size
    FROM groups
),
moments AS (
    -- the group's mean and spread, summed in list order (float sums depend on the order)
    SELECT *, list_avg(scores) AS mean_score, list_aggregate(scores, 'stddev_pop') AS sd_score
    FROM ranked_lists
)
SELECT
    content_id(list_concat([l.prompt_id, l.criterion], l.candidate_ids)) AS list_id,
    l.prompt_id,
    p.prompt,
    l.candidate_ids,
    l.completions,
    scores,
    -- competition ranking: 1 + the number of higher scores = the first position of an equal score
    list_transform(l.scores, lambda x: list_position(l.scores, x)::INTEGER) AS ranks,
    list_transform(
        l.scores,
        lambda x: CASE WHEN l.zero_variance THEN 0.0 ELSE (x - l.mean_score) / (l.sd_score + 1e-6) END
    ) AS advantages,
    l.criterion,
    list_transform(
        l.scores, lambda x: CASE WHEN l.zero_variance THEN 0.0 ELSE x - l.mean_score END
    ) AS advantages_mean,
    l.zero_variance,
    l.group_size
FROM moments AS l
LEFT JOIN prompt_texts AS p ON p.prompt_id = l.prompt_id
ORDER BY l.prompt_id, l.criterion
