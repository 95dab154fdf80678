-- judge_agreement: how far judges agree on the candidates they both scored.
--
-- Inputs (views): judgments, read through usable_judgments() (sql/usable_judgments.sql).
-- Parameters: none.
--
-- A rater is a (judge, criterion); its score of a candidate is the mean of its usable point judgments
-- of that candidate (usable_judgments(), mode = 'point').
-- Every ordered pair of raters that share at least one candidate gets a row, the diagonal included,
-- so the rows fill a symmetric matrix.
--
-- Output:
--   rater_a, rater_b  VARCHAR  judge, or judge/criterion when the criterion is not 'overall'
--   n                 BIGINT   candidates both scored
--   pearson           DOUBLE   corr of the two raters' scores; NULL when either side is constant
--   spearman          DOUBLE   Pearson correlation of the ranks (average ranks for ties)
--   mean_abs_diff     DOUBLE   mean |score_a - score_b|
WITH per_rater AS (
    SELECT
        CASE WHEN criterion = 'overall' THEN judge ELSE judge || '/' || criterion END AS rater,
        candidate_id,
        avg(score) AS score
    FROM usable_judgments()
    WHERE mode = 'point'
    GROUP BY 1, 2
),
joined AS (
    SELECT a.rater AS rater_a, b.rater AS rater_b, a.score AS x, b.score AS y
    FROM per_rater AS a
    JOIN per_rater AS b USING (candidate_id)
),
ranked AS (
    SELECT
        rater_a,
        rater_b,
        x,
        y,
        rank() OVER (PARTITION BY rater_a, rater_b ORDER BY x)
            + (count(*) OVER (PARTITION BY rater_a, rater_b, x) - 1) / 2.0 AS rx,
        rank() OVER (PARTITION BY rater_a, rater_b ORDER BY y)
            + (count(*) OVER (PARTITION BY rater_a, rater_b, y) - 1) / 2.0 AS ry
    FROM joined
)
SELECT
    rater_a,
    rater_b,
    count(*)::BIGINT AS n,
    CASE WHEN var_pop(x) > 0 AND var_pop(y) > 0 THEN corr(x, y) END AS pearson,
    CASE WHEN var_pop(rx) > 0 AND var_pop(ry) > 0 THEN corr(rx, ry) END AS spearman,
    avg(abs(x - y)) AS mean_abs_diff
FROM ranked
GROUP BY rater_a, rater_b
ORDER BY rater_a, rater_b
