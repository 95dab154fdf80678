-- empty_responses: candidates that did not fail but whose response is empty or only whitespace, per
-- generator (a model that stops at once, a chat template that ends the turn early).
--
-- Inputs (views): candidates.
-- Parameters: none.
--
-- Output: one row per generator that has at least one.
--   generator  VARCHAR
--   empty      BIGINT     candidates without an error whose response is NULL, '' or whitespace
--   usable     BIGINT     candidates without an error
--   examples   VARCHAR[]  up to 3 candidate_ids (the smallest)
SELECT
    generator,
    count(*) FILTER (WHERE coalesce(trim(response), '') = '')::BIGINT AS empty,
    count(*)::BIGINT AS usable,
    (list(candidate_id ORDER BY candidate_id) FILTER (WHERE coalesce(trim(response), '') = ''))[1:3]
        AS examples
FROM candidates
WHERE error IS NULL
GROUP BY generator
HAVING count(*) FILTER (WHERE coalesce(trim(response), '') = '') > 0
ORDER BY generator
