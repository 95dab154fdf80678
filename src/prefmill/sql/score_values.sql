-- candidate_score_values: candidate_scores without its texts (no prompt, no response). The runner
-- wraps this SELECT as
--     CREATE OR REPLACE TEMP VIEW candidate_score_values AS <this file>
-- and, while an output's SQL runs, computes it once into a temporary table (one scan of each input).
-- scores.sql (the candidate_scores view) is this view joined with the texts; the built-in lists.sql
-- and pairs.sql (but best_vs_worst) select from this one and join the texts of the rows they output
-- last; points.sql and best_vs_worst read candidate_judged_values and join the candidates once.
--
-- Inputs (views): candidates, candidate_judged_values (judged_values.sql, over judgments: the scores,
--         the aggregation the DuckDB variable `aggregation` picks, the 'weighted' rows of table
--         criterion_weights). The candidates column policy_logprob (log-prob under the target
--         policy, for offline candidates) is used when the table has it.
-- Parameters: none ($parameters cannot live in a view).
--
-- Output: one row per (prompt_id, candidate_id, criterion) of a usable candidate that has at least
-- one usable judgment; the columns of candidate_scores (scores.sql) but prompt and response.
--
-- How: candidate_judged_values (judged_values.sql: the usable judgments, pair win rates, aggregation,
-- weighted rows and swap columns) joined with the usable candidates: error IS NULL and response IS
-- NOT NULL. Errors stay in their tables as data; they are only left out here.
WITH with_policy AS (
    -- adds a NULL policy_logprob column when the candidates table has none
    SELECT * FROM candidates
    UNION ALL BY NAME
    (SELECT NULL::DOUBLE AS policy_logprob WHERE false)
),
usable_candidates AS (
    SELECT
        candidate_id,
        prompt_id,
        logprob,
        n_tokens,
        coalesce(policy_logprob, logprob) / nullif(n_tokens, 0) AS logprob_per_token
    FROM with_policy
    WHERE error IS NULL AND response IS NOT NULL
)
SELECT
    c.prompt_id,
    c.candidate_id,
    s.criterion,
    c.logprob,
    c.n_tokens,
    s.score,
    s.spread,
    s.n_judgments,
    s.n_judges,
    c.logprob_per_token,
    s.score_mean,
    s.score_median,
    s.score_vote,
    s.swap_inconsistency,
    s.n_swapped
FROM usable_candidates AS c
JOIN candidate_judged_values AS s
  ON s.candidate_id = c.candidate_id AND s.prompt_id = c.prompt_id
