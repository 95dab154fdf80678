-- truncation: responses cut off by the token limit (finish_reason = 'length'), per generator.
--
-- Inputs (views): candidates.
-- Parameters: none.
--
-- Output: one row per generator.
--   generator  VARCHAR
--   usable     BIGINT  candidates without a generation error
--   truncated  BIGINT  of those, finish_reason = 'length' (the reply hit max_new_tokens)
--   rate       DOUBLE  truncated / usable (NULL when none is usable)
SELECT
    generator,
    count(*) FILTER (WHERE error IS NULL)::BIGINT AS usable,
    count(*) FILTER (WHERE error IS NULL AND finish_reason = 'length')::BIGINT AS truncated,
    (count(*) FILTER (WHERE error IS NULL AND finish_reason = 'length'))::DOUBLE
        / nullif(count(*) FILTER (WHERE error IS NULL), 0) AS rate
FROM candidates
GROUP BY generator
ORDER BY generator
