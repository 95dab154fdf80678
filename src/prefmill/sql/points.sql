-- points: one row per scored candidate, with a scalar reward and a KTO desirable/undesirable label.
--
-- Inputs: view candidate_scores (scores.sql). Macro content_id(list) = first 16 hex chars of sha256
--         of the list's canonical JSON, equal to prefmill.ids.content_id (the runner defines it).
-- Parameters:
--   $label_threshold  DOUBLE  label = score >= $label_threshold
--
-- Output (the `points` table):
--   point_id      VARCHAR  content_id([candidate_id, criterion])
--   prompt_id     VARCHAR
--   prompt        VARCHAR  last user message
--   completion    VARCHAR  the candidate's response
--   candidate_id  VARCHAR
--   reward        DOUBLE   the candidate's score
--   label         BOOLEAN  desirable (true) / undesirable (false)
--   criterion     VARCHAR
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE.
SELECT
    content_id([candidate_id, criterion]) AS point_id,
    prompt_id,
    prompt,
    response AS completion,
    candidate_id,
    score AS reward,
    score >= $label_threshold AS label,
    criterion
FROM candidate_scores
ORDER BY prompt_id, criterion, candidate_id
