-- length_delta: how much longer the chosen response is than the rejected one, per criterion (a
-- preference dataset whose chosen side is always longer teaches length).
--
-- Inputs (views): pairs, candidates.
-- Parameters: none.
--
-- Output: one row per criterion of the pairs.
--   criterion        VARCHAR
--   pairs            BIGINT  pairs whose two candidates have a token count
--   chosen_tokens    DOUBLE  mean n_tokens of the chosen responses
--   rejected_tokens  DOUBLE  mean n_tokens of the rejected responses
--   mean_delta       DOUBLE  mean of chosen minus rejected tokens
--   median_delta     DOUBLE  median of chosen minus rejected tokens
--   chosen_longer    DOUBLE  share of pairs whose chosen response has more tokens
SELECT
    p.criterion,
    count(*)::BIGINT AS pairs,
    avg(c.n_tokens)::DOUBLE AS chosen_tokens,
    avg(r.n_tokens)::DOUBLE AS rejected_tokens,
    avg(c.n_tokens - r.n_tokens)::DOUBLE AS mean_delta,
    median(c.n_tokens - r.n_tokens)::DOUBLE AS median_delta,
    avg(CASE WHEN c.n_tokens > r.n_tokens THEN 1.0 ELSE 0.0 END)::DOUBLE AS chosen_longer
FROM pairs AS p
JOIN candidates AS c ON c.candidate_id = p.chosen_id
JOIN candidates AS r ON r.candidate_id = p.rejected_id
WHERE c.n_tokens IS NOT NULL AND r.n_tokens IS NOT NULL
GROUP BY p.criterion
ORDER BY p.criterion
