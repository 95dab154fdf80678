-- candidate_scores: the per-candidate score that pairs.sql, points.sql and lists.sql (and custom
-- instantiation SQL) select from. The runner wraps this SELECT as
--     CREATE OR REPLACE TEMP VIEW candidate_scores AS <this file>
--
-- Inputs (views): prompts, candidates, judgments (columns as in prefmill.storage.schemas).
-- Parameters: none.
--
-- Output: one row per (prompt_id, candidate_id, criterion) that has at least one usable judgment.
--   prompt_id     VARCHAR
--   candidate_id  VARCHAR
--   criterion     VARCHAR  'overall' or a rubric dimension
--   prompt        VARCHAR  content of the last 'user' message of the prompt (NULL if none)
--   response      VARCHAR  the candidate's response
--   logprob       DOUBLE   policy log-prob of the response (nullable)
--   n_tokens      BIGINT   response length in tokens (nullable)
--   score         DOUBLE   mean over judges of each judge's mean score (one score per judge is the
--                          usual case, where this is the plain mean of the judgment scores)
--   spread        DOUBLE   stddev_pop of the per-judge scores; 0 when one judge
--   n_judgments   BIGINT   usable judgments behind the score
--   n_judges      BIGINT   distinct judges behind the score
--
-- Usable judgments: mode = 'point', granularity = 'outcome', parse_error IS NULL, score IS NOT NULL.
-- Usable candidates: error IS NULL and response IS NOT NULL. Errors stay in their tables as data;
-- they are only left out here.
WITH usable_candidates AS (
    SELECT candidate_id, prompt_id, response, logprob, n_tokens
    FROM candidates
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
    s.n_judges
FROM usable_candidates AS c
JOIN per_candidate AS s
  ON s.candidate_id = c.candidate_id AND s.prompt_id = c.prompt_id
LEFT JOIN last_user AS p
  ON p.prompt_id = c.prompt_id
