-- length_score_corr: how strongly score follows response length, per criterion (all candidates).
--
-- Inputs (views): candidates, judgments (through usable_judgments(), sql/usable_judgments.sql).
-- Parameters: none.
--
-- Output: one row per criterion.
--   criterion    VARCHAR
--   n            BIGINT  usable candidates with a score
--   pearson      DOUBLE  corr(n_tokens, score); NULL when either side is constant
--   spearman     DOUBLE  Pearson correlation of the ranks (average ranks for ties)
--   mean_tokens  DOUBLE
--   mean_score   DOUBLE
WITH per_judge AS (
    SELECT candidate_id, criterion, judge, avg(score) AS judge_score
    FROM usable_judgments()
    WHERE mode = 'point'
    GROUP BY candidate_id, criterion, judge
),
per_candidate AS (
    SELECT candidate_id, criterion, avg(judge_score) AS score FROM per_judge GROUP BY candidate_id, criterion
),
points AS (
    SELECT s.criterion, c.n_tokens::DOUBLE AS x, s.score AS y
    FROM candidates AS c
    JOIN per_candidate AS s USING (candidate_id)
    WHERE c.error IS NULL AND c.response IS NOT NULL AND c.n_tokens IS NOT NULL
),
ranked AS (
    SELECT
        criterion,
        x,
        y,
        rank() OVER (PARTITION BY criterion ORDER BY x)
            + (count(*) OVER (PARTITION BY criterion, x) - 1) / 2.0 AS rx,
        rank() OVER (PARTITION BY criterion ORDER BY y)
            + (count(*) OVER (PARTITION BY criterion, y) - 1) / 2.0 AS ry
    FROM points
)
SELECT
    criterion,
    count(*)::BIGINT AS n,
    CASE WHEN var_pop(x) > 0 AND var_pop(y) > 0 THEN corr(x, y) END AS pearson,
    CASE WHEN var_pop(rx) > 0 AND var_pop(ry) > 0 THEN corr(rx, ry) END AS spearman,
    avg(x) AS mean_tokens,
    avg(y) AS mean_score
FROM ranked
GROUP BY criterion
ORDER BY criterion
