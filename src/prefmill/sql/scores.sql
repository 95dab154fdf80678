-- candidate_scores: the per-candidate score that pairs.sql, points.sql and lists.sql (and custom
-- instantiation SQL) select from. The runner wraps this SELECT as
--     CREATE OR REPLACE TEMP VIEW candidate_scores AS <this file>
--
-- Inputs (views): prompts, candidates, judgments (columns as in prefmill.storage.schemas). The
--         candidates column policy_logprob (log-prob under the target policy, for offline candidates)
--         is used when the table has it. Table criterion_weights (criterion VARCHAR, weight DOUBLE),
--         filled by the runner from the recipe's criterion_weights: weighted scalarisation. When it
--         has rows, each candidate scored on every listed criterion also gets a row with criterion
--         'weighted' and score = sum(weight * score); empty, there are no such rows.
-- Parameters: none (a view cannot hold parameters).
--
-- Output: one row per (prompt_id, candidate_id, criterion) that has at least one usable judgment.
--   prompt_id     VARCHAR
--   candidate_id  VARCHAR
--   criterion     VARCHAR  'overall' or a rubric dimension
--   prompt        VARCHAR  content of the last 'user' message of the prompt (NULL if none)
--   response      VARCHAR  the candidate's response
--   logprob       DOUBLE   log-prob of the response under its generator (nullable)
--   n_tokens      BIGINT   response length in tokens (nullable)
--   score         DOUBLE   mean over judges of each judge's mean score (one score per judge is the
--                          usual case, where this is the plain mean of the judgment scores)
--   spread        DOUBLE   stddev_pop of the per-judge scores; 0 when one judge
--   n_judgments   BIGINT   usable judgments behind the score
--   n_judges      BIGINT   distinct judges behind the score
--   logprob_per_token DOUBLE  coalesce(policy_logprob, logprob) / n_tokens: the policy's mean token
--                          log-prob (NULL without log-probs or tokens); pairs use it for WPO weights and
--                          implicit margins
--
-- Usable judgments: mode = 'point', granularity = 'outcome', parse_error IS NULL, score IS NOT NULL.
-- Usable candidates: error IS NULL and response IS NOT NULL. Errors stay in their tables as data;
-- they are only left out here.
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
        response,
        logprob,
        n_tokens,
        coalesce(policy_logprob, logprob) / nullif(n_tokens, 0) AS logprob_per_token
    FROM with_policy
    WHERE error IS NULL AND response IS NOT NULL
),
per_judge AS (
    SELECT
        j.prompt_id,
        j.candidate_id,
        j.criterion,
        j.judge,
        avg(j.score) AS judge_score,
        count(*) AS n_judgments
    FROM judgments AS j
    WHERE j.mode = 'point'
      AND j.granularity = 'outcome'
      AND j.parse_error IS NULL
      AND j.score IS NOT NULL
    GROUP BY j.prompt_id, j.candidate_id, j.criterion, j.judge
),
per_candidate AS (
    SELECT
        prompt_id,
        candidate_id,
        criterion,
        avg(judge_score) AS score,
        coalesce(stddev_pop(judge_score), 0.0) AS spread,
        sum(n_judgments)::BIGINT AS n_judgments,
        count(*)::BIGINT AS n_judges
    FROM per_judge
    GROUP BY prompt_id, candidate_id, criterion
),
weighted AS (
    -- one 'weighted' row per candidate scored on every weighted criterion
    SELECT
        s.prompt_id,
        s.candidate_id,
        'weighted' AS criterion,
        sum(w.weight * s.score) AS score,
        max(s.spread) AS spread,
        sum(s.n_judgments)::BIGINT AS n_judgments,
        max(s.n_judges)::BIGINT AS n_judges
    FROM per_candidate AS s
    JOIN criterion_weights AS w ON w.criterion = s.criterion
    GROUP BY s.prompt_id, s.candidate_id
    HAVING count(*) = (SELECT count(*) FROM criterion_weights)
),
all_scores AS (
    SELECT * FROM per_candidate
    UNION ALL
    SELECT * FROM weighted
),
last_user AS (
    SELECT
        prompt_id,
        list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt
    FROM prompts
)
SELECT
    c.prompt_id,
    c.candidate_id,
    s.criterion,
    p.prompt,
    c.response,
    c.logprob,
    c.n_tokens,
    s.score,
    s.spread,
    s.n_judgments,
    s.n_judges,
    c.logprob_per_token
FROM usable_candidates AS c
JOIN all_scores AS s
  ON s.candidate_id = c.candidate_id AND s.prompt_id = c.prompt_id
LEFT JOIN last_user AS p
  ON p.prompt_id = c.prompt_id
