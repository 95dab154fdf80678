-- kto_balance: desirable vs undesirable KTO labels in `points`, per criterion.
--
-- Inputs (views): points.
-- Parameters: none.
--
-- Output: one row per criterion.
--   criterion    VARCHAR
--   desirable    BIGINT  label = true
--   undesirable  BIGINT  label = false
--   unlabelled   BIGINT  label IS NULL
--   desirable_share  DOUBLE  desirable / (desirable + undesirable)
SELECT
    coalesce(criterion, 'overall') AS criterion,
    count(*) FILTER (WHERE label)::BIGINT AS desirable,
    count(*) FILTER (WHERE NOT label)::BIGINT AS undesirable,
    count(*) FILTER (WHERE label IS NULL)::BIGINT AS unlabelled,
    count(*) FILTER (WHERE label) / nullif(count(label), 0) AS desirable_share
FROM points
GROUP BY 1
ORDER BY 1
