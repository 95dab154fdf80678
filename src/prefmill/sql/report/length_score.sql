-- length_score: response length against score, one point per usable candidate and criterion.
--
-- Inputs (views): candidates, judgments (through usable_judgments(), sql/usable_judgments.sql).
-- Parameters:
--   $limit  INTEGER  at most this many points (a deterministic sample: ordered by md5 of the id)
--
-- The score is scores.sql's: the mean over judges of each judge's mean usable point score.
--
-- Output:
--   candidate_id  VARCHAR
--   criterion     VARCHAR
--   n_tokens      BIGINT   response length in tokens
--   n_chars       BIGINT   response length in characters
--   score         DOUBLE
WITH per_judge AS (
    SELECT candidate_id, criterion, judge, avg(score) AS judge_score
    FROM usable_judgments()
    WHERE mode = 'point'
    GROUP BY candidate_id, criterion, judge
),
per_candidate AS (
    SELECT candidate_id, criterion, avg(judge_score) AS score FROM per_judge GROUP BY candidate_id, criterion
)
SELECT
    c.candidate_id,
    s.criterion,
    c.n_tokens::BIGINT AS n_tokens,
    length(c.response)::BIGINT AS n_chars,
    s.score
FROM candidates AS c
JOIN per_candidate AS s USING (candidate_id)
WHERE c.error IS NULL AND c.response IS NOT NULL
ORDER BY md5(c.candidate_id || s.criterion)
LIMIT $limit
