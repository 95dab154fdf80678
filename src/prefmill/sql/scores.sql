-- candidate_scores: the per-candidate score with its texts, for instantiation SQL of your own (the
-- built-in pairs.sql, points.sql and lists.sql read candidate_score_values, the same rows without the
-- texts, and join the texts of their output last). The runner wraps this SELECT as
--     CREATE OR REPLACE TEMP VIEW candidate_scores AS <this file>
--
-- Inputs (views): prompts, candidates, candidate_score_values (score_values.sql, over judgments). The
--         candidates column policy_logprob (log-prob under the target policy, for offline candidates)
--         is used when the table has it. Table criterion_weights (criterion VARCHAR, weight DOUBLE),
--         filled by the runner from the recipe's criterion_weights: weighted scalarisation. When it
--         has rows, each candidate scored on every listed criterion also gets a row with criterion
--         'weighted' and score = sum(weight * score); empty, there are no such rows.
-- Parameters: none ($parameters cannot live in a view). The DuckDB variable `aggregation` picks how
--   judges are combined into `score`: 'mean' (default, also when unset), 'median' or 'vote'; the
--   runner sets it from the recipe's evaluation.aggregation (SET VARIABLE aggregation = 'median').
--   A 'weighted' row combines the chosen per-criterion scores.
--
-- Output: one row per (prompt_id, candidate_id, criterion) that has at least one usable judgment.
--   prompt_id     VARCHAR
--   candidate_id  VARCHAR
--   criterion     VARCHAR  'overall' or a rubric dimension (or 'weighted')
--   prompt        VARCHAR  content of the last 'user' message of the prompt (NULL if none)
--   response      VARCHAR  the candidate's response
--   logprob       DOUBLE   log-prob of the response under its generator (nullable)
--   n_tokens      BIGINT   response length in tokens (nullable)
--   score         DOUBLE   score_mean, score_median or score_vote, as `aggregation` says, rounded to
--                          12 decimals so that float noise never separates equal scores
--   spread        DOUBLE   ensemble spread: stddev_pop of the per-judge scores; 0 when one judge
--   n_judgments   BIGINT   usable judgments behind the score (point rows, and pair rows naming it)
--   n_judges      BIGINT   distinct judges behind the score
--   logprob_per_token DOUBLE  coalesce(policy_logprob, logprob) / n_tokens: the policy's mean token
--                          log-prob (NULL without log-probs or tokens); pairs use it for WPO weights and
--                          implicit margins
--   score_mean    DOUBLE   mean over judges of each judge's mean score (one score per judge is the
--                          usual case, where this is the plain mean of the judgment scores)
--   score_median  DOUBLE   median of the per-judge scores (the mean of the middle two when even)
--   score_vote    DOUBLE   majority vote of the judges, for binary verdicts: a judge votes yes when
--                          its score >= 0.5; 1.0 when more judges vote yes than no, 0.0 when fewer,
--                          0.5 on a tie
--   swap_inconsistency DOUBLE  share of this candidate's position-swapped comparisons (a judge's pair
--                          verdicts on the same two candidates in both orders 'ab' and 'ba') whose two
--                          orders disagree; NULL when it has none
--   n_swapped     BIGINT   position-swapped comparisons behind swap_inconsistency (0 when none)
--
-- How: candidate_score_values (score_values.sql: the scores, spreads and swap columns, and the rules of
-- usable judgments, pair win rates and aggregation) joined with the texts: the usable candidate's
-- response and the prompt's last user message. The built-in output SQL reads candidate_score_values
-- and joins the texts of the rows it outputs only; this view is the one to read in SQL of your own.
SELECT
    v.prompt_id,
    v.candidate_id,
    v.criterion,
    p.prompt,
    c.response,
    v.logprob,
    v.n_tokens,
    v.score,
    v.spread,
    v.n_judgments,
    v.n_judges,
    v.logprob_per_token,
    v.score_mean,
    v.score_median,
    v.score_vote,
    v.swap_inconsistency,
    v.n_swapped
FROM candidate_score_values AS v
JOIN (
    SELECT candidate_id, prompt_id, response FROM candidates WHERE error IS NULL AND response IS NOT NULL
) AS c
  ON c.candidate_id = v.candidate_id AND c.prompt_id = v.prompt_id
LEFT JOIN (
    SELECT prompt_id, list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt FROM prompts
) AS p
  ON p.prompt_id = v.prompt_id
