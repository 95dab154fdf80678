-- funnel: the candidate end of the selection funnel (the pair end, pairs before selection, removed
-- per reason and kept, comes from the pairs version's manifest: stats.rows_before_selection and
-- stats.removed).
--
-- Inputs (views): candidates, candidate_score_values (score_values.sql, bound by the report with the
--         output's aggregation and criterion weights).
-- Parameters: none.
--
-- Output: one row.
--   candidates  BIGINT  candidate rows, failed generations included
--   usable      BIGINT  candidates without a generation error and with a response
--   scored      BIGINT  usable candidates with at least one usable judgment (a score)
SELECT
    (SELECT count(*) FROM candidates)::BIGINT AS candidates,
    (SELECT count(*) FROM candidates WHERE error IS NULL AND response IS NOT NULL)::BIGINT AS usable,
    (SELECT count(DISTINCT candidate_id) FROM candidate_score_values)::BIGINT AS scored
