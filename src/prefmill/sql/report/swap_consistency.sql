-- swap_consistency: do pair-wise judges keep their verdict when the two responses swap places?
--
-- Inputs (views): judgments, read through usable_judgments() and swap_pairs()
--                 (sql/usable_judgments.sql).
-- Parameters: none.
--
-- A swapped pair is a row of swap_pairs(): usable 'ab' and 'ba' rows of one judge and criterion about
-- the same two candidates. The two orders are consistent when they prefer the same response (both
-- sides of 0.5 agree; a tie at 0.5 is consistent only with a tie).
--
-- Output: one row per (judge, criterion) with usable pair-wise judgments.
--   judge, criterion        VARCHAR
--   judgments               BIGINT  usable pair-wise rows (both orders)
--   swapped_pairs           BIGINT  candidate pairs judged in both orders
--   consistent              BIGINT  of those, the ones whose two orders agree
--   consistency             DOUBLE  consistent / swapped_pairs (NULL without swapped pairs)
--   first_preferred         DOUBLE  share of rows that prefer the first-shown response (> 0.5):
--                                   0.5 means no position bias
--   mean_abs_shift          DOUBLE  mean |p_ab - p_ba| over swapped pairs (the preference for the
--                                   same response, read from each order)
WITH per_judge AS (
    SELECT
        judge,
        criterion,
        count(*)::BIGINT AS swapped_pairs,
        count(*) FILTER (WHERE consistent)::BIGINT AS consistent,
        avg(abs(p_ab - p_ba)) AS mean_abs_shift
    FROM swap_pairs()
    GROUP BY judge, criterion
),
per_row AS (
    SELECT
        judge,
        criterion,
        count(*)::BIGINT AS judgments,
        avg(CASE WHEN prefers_first > 0.5 THEN 1.0 ELSE 0.0 END) AS first_preferred
    FROM usable_judgments()
    WHERE mode = 'pair'
    GROUP BY judge, criterion
)
SELECT
    r.judge,
    r.criterion,
    r.judgments,
    coalesce(s.swapped_pairs, 0)::BIGINT AS swapped_pairs,
    coalesce(s.consistent, 0)::BIGINT AS consistent,
    s.consistent / nullif(s.swapped_pairs, 0) AS consistency,
    r.first_preferred,
    s.mean_abs_shift
FROM per_row AS r
LEFT JOIN per_judge AS s USING (judge, criterion)
ORDER BY r.judge, r.criterion
