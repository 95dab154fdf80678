-- score_histogram: the distribution of point-wise scores, per judge and criterion.
--
-- Inputs (views): judgments, read through usable_judgments() (sql/usable_judgments.sql).
-- Parameters:
--   $bins  INTEGER  bins per (judge, criterion), equal width over that judge's [min, max] score
--
-- Usable point judgments (usable_judgments(), as in scores.sql). A judge whose scores are all equal
-- gets one bin of width 0.
--
-- Output: one row per non-empty bin.
--   judge      VARCHAR
--   criterion  VARCHAR
--   bin        BIGINT  0 .. $bins - 1 (the maximum falls in the last bin)
--   lo, hi     DOUBLE  the bin's edges
--   n          BIGINT  judgments in the bin
WITH usable AS (
    SELECT judge, criterion, score
    FROM usable_judgments()
    WHERE mode = 'point'
),
ranges AS (
    SELECT judge, criterion, min(score) AS lo, max(score) AS hi FROM usable GROUP BY judge, criterion
),
binned AS (
    SELECT
        u.judge,
        u.criterion,
        r.lo AS range_lo,
        (r.hi - r.lo) / $bins AS width,
        CASE
            WHEN r.hi = r.lo THEN 0
            ELSE least(floor((u.score - r.lo) / ((r.hi - r.lo) / $bins)), $bins - 1)
        END::BIGINT AS bin
    FROM usable AS u
    JOIN ranges AS r USING (judge, criterion)
)
SELECT
    judge,
    criterion,
    bin,
    range_lo + bin * width AS lo,
    range_lo + (bin + 1) * width AS hi,
    count(*)::BIGINT AS n
FROM binned
GROUP BY judge, criterion, bin, range_lo, width
ORDER BY judge, criterion, bin
