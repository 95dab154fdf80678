-- swap_consistency: do pair-wise judges keep their verdict when the two responses swap places?
--
-- Inputs (views): judgments.
-- Parameters: none.
--
-- Pair-wise judgments (mode = 'pair', parse_error IS NULL, prefers_first IS NOT NULL) come in two
-- orders: 'ab' and 'ba' rows of one judge and criterion about the same two candidates. prefers_first is
-- the preference for the response shown first, so the 'ba' row's preference for the 'ab' row's first
-- response is 1 - prefers_first. The two orders are consistent when they prefer the same response
-- (both sides of 0.5 agree; a tie at 0.5 is consistent only with a tie).
--
-- Output: one row per (judge, criterion) with pair-wise judgments.
--   judge, criterion        VARCHAR
--   judgments               BIGINT  usable pair-wise rows (both orders)
--   swapped_pairs           BIGINT  candidate pairs judged in both orders
--   consistent              BIGINT  of those, the ones whose two orders agree
--   consistency             DOUBLE  consistent / swapped_pairs (NULL without swapped pairs)
--   first_preferred         DOUBLE  share of rows that prefer the first-shown response (> 0.5):
--                                   0.5 means no position bias
--   mean_abs_shift          DOUBLE  mean |p_ab - (1 - p_ba)| over swapped pairs
WITH usable AS (
    SELECT
        judge,
        criterion,
        granularity,
        unit_index,
        "order",
        candidate_id,
        other_candidate_id,
        least(candidate_id, other_candidate_id) AS lo,
        greatest(candidate_id, other_candidate_id) AS hi,
        prefers_first
    FROM judgments
    WHERE mode = 'pair' AND parse_error IS NULL AND prefers_first IS NOT NULL
      AND other_candidate_id IS NOT NULL
),
swapped AS (
    SELECT
        ab.judge,
        ab.criterion,
        ab.prefers_first AS p_ab,
        1.0 - ba.prefers_first AS p_ba
    FROM usable AS ab
    JOIN usable AS ba
      ON ab.judge = ba.judge AND ab.criterion = ba.criterion AND ab.granularity = ba.granularity
     AND ab.unit_index IS NOT DISTINCT FROM ba.unit_index AND ab.lo = ba.lo AND ab.hi = ba.hi
    WHERE ab."order" = 'ab' AND ba."order" = 'ba'
),
per_judge AS (
    SELECT
        judge,
        criterion,
        count(*)::BIGINT AS swapped_pairs,
        count(*) FILTER (WHERE sign(p_ab - 0.5) = sign(p_ba - 0.5))::BIGINT AS consistent,
        avg(abs(p_ab - p_ba)) AS mean_abs_shift
    FROM swapped
    GROUP BY judge, criterion
),
per_row AS (
    SELECT
        judge,
        criterion,
        count(*)::BIGINT AS judgments,
        avg(CASE WHEN prefers_first > 0.5 THEN 1.0 ELSE 0.0 END) AS first_preferred
    FROM usable
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
