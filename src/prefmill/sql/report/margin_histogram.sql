-- margin_histogram: the distribution of pair margins (chosen_score - rejected_score), per criterion.
--
-- Inputs (views): pairs.
-- Parameters:
--   $bins  INTEGER  bins per criterion, equal width over that criterion's [min, max] margin
--
-- Output: one row per non-empty bin.
--   criterion  VARCHAR
--   bin        BIGINT  0 .. $bins - 1 (the maximum falls in the last bin)
--   lo, hi     DOUBLE  the bin's edges
--   n          BIGINT  pairs in the bin
WITH usable AS (
    SELECT coalesce(criterion, 'overall') AS criterion, margin FROM pairs WHERE margin IS NOT NULL
),
ranges AS (
    SELECT criterion, min(margin) AS lo, max(margin) AS hi FROM usable GROUP BY criterion
),
binned AS (
    SELECT
        u.criterion,
        r.lo AS range_lo,
        (r.hi - r.lo) / $bins AS width,
        CASE
            WHEN r.hi = r.lo THEN 0
            ELSE least(floor((u.margin - r.lo) / ((r.hi - r.lo) / $bins)), $bins - 1)
        END::BIGINT AS bin
    FROM usable AS u
    JOIN ranges AS r USING (criterion)
)
SELECT
    criterion,
    bin,
    range_lo + bin * width AS lo,
    range_lo + (bin + 1) * width AS hi,
    count(*)::BIGINT AS n
FROM binned
GROUP BY criterion, bin, range_lo, width
ORDER BY criterion, bin
