-- tokens: generation volume per generator (engine + model).
--
-- Inputs (views): candidates.
-- Parameters: none.
--
-- Output: one row per generator.
--   generator          VARCHAR
--   candidates         BIGINT  rows, failed ones included
--   errors             BIGINT  rows with error set
--   completion_tokens  BIGINT  sum of n_tokens
--   prompt_tokens      BIGINT  sum of prompt_tokens
--   mean_tokens        DOUBLE  mean n_tokens of the usable candidates
--   mean_latency_ms    DOUBLE  mean latency_ms of the usable candidates
SELECT
    generator,
    count(*)::BIGINT AS candidates,
    count(*) FILTER (WHERE error IS NOT NULL)::BIGINT AS errors,
    coalesce(sum(n_tokens), 0)::BIGINT AS completion_tokens,
    coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
    avg(n_tokens) FILTER (WHERE error IS NULL) AS mean_tokens,
    avg(latency_ms) FILTER (WHERE error IS NULL) AS mean_latency_ms
FROM candidates
GROUP BY generator
ORDER BY generator
