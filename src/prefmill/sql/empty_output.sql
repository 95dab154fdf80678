-- empty_output: why an instantiation output came out with no rows (run only then, on the session
-- the output's SQL ran on).
--
-- Inputs (views): prompts, candidates, candidate_scores (scores.sql).
-- Parameters: none.
--
-- Output: one row.
--   prompts                  BIGINT  prompts of the version
--   candidates               BIGINT  candidates without a generation error
--   scored                   BIGINT  candidates with at least one usable judgment (a candidate_scores row)
--   prompts_two_scored       BIGINT  prompts with at least two scored candidates on one criterion
--   prompts_distinct_scores  BIGINT  of those, the prompts whose scored candidates do not all score the same
WITH per_prompt AS (
    SELECT prompt_id, criterion, count(*) AS n, count(DISTINCT score) AS distinct_scores
    FROM candidate_scores
    GROUP BY prompt_id, criterion
)
SELECT
    (SELECT count(*) FROM prompts) AS prompts,
    (SELECT count(*) FROM candidates WHERE error IS NULL) AS candidates,
    (SELECT count(DISTINCT candidate_id) FROM candidate_scores) AS scored,
    (SELECT count(DISTINCT prompt_id) FROM per_prompt WHERE n >= 2) AS prompts_two_scored,
    (SELECT count(DISTINCT prompt_id) FROM per_prompt WHERE n >= 2 AND distinct_scores >= 2)
        AS prompts_distinct_scores
