-- points: one row per scored candidate, with a scalar reward and a KTO desirable/undesirable label.
--
-- Inputs: view candidate_judged_values (judged_values.sql: the judges' scores, before the candidates
--         are read), views candidates (usability and the response, read in one join) and prompts. Macro content_id(list) = first 16 hex chars of sha256
--         of the list's canonical JSON, equal to prefmill.ids.content_id (the runner defines it).
-- Parameters:
--   $label_rule       VARCHAR  'threshold': label = score >= $label_threshold;
--                              'quantile': per (prompt, criterion), label = true for scores in the top
--                              $label_quantile (score >= the (1 - q) quantile and above the q quantile),
--                              false for the bottom $label_quantile; the rows in between are dropped
--                              (drop_reason 'quantile_middle'), and so is every row of a group whose
--                              scores are all equal
--   $label_threshold  DOUBLE   see 'threshold'
--   $label_quantile   DOUBLE   see 'quantile', in (0, 0.5]
--   $min_spread, $max_spread DOUBLE  ensemble spread band (NULL: off): drop points whose judges'
--                              spread is outside it (drop_reason 'spread_below_min' / 'spread_above_max')
--
-- Output (the `points` table, plus spread and drop_reason):
--   point_id      VARCHAR  content_id([candidate_id, criterion])
--   prompt_id     VARCHAR
--   prompt        VARCHAR  last user message
--   completion    VARCHAR  the candidate's response
--   candidate_id  VARCHAR
--   reward        DOUBLE   the candidate's score
--   label         BOOLEAN  desirable (true) / undesirable (false)
--   criterion     VARCHAR
--   spread        DOUBLE   the judges' spread on this candidate
--   drop_reason   VARCHAR  why the row is left out (NULL: kept); the runner removes these rows and
--                          counts them in the manifest's stats
--
-- Plan: the judged scores are joined with the usable candidates once, which gives the rows of
-- candidate_score_values and their responses together; the label rule not asked for is planned away
-- (the quantile windows cost only under 'quantile'); prompt texts are joined last.
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE.
WITH usable_candidates AS (
    -- read once, for usability and the response together
    SELECT candidate_id, prompt_id, response FROM candidates WHERE error IS NULL AND response IS NOT NULL
),
scored AS (
    -- the judged scores (judged_values.sql) of the usable candidates, with their responses: the rows
    -- of candidate_score_values, and the text, from one join
    SELECT s.prompt_id, s.candidate_id, s.criterion, s.score, s.spread, c.response
    FROM candidate_judged_values AS s
    JOIN usable_candidates AS c ON c.candidate_id = s.candidate_id AND c.prompt_id = s.prompt_id
),
thresholded AS (
    SELECT prompt_id, candidate_id, criterion, score, spread, response, score >= $label_threshold AS label
    FROM scored
    WHERE $label_rule = 'threshold'
),
quantiles AS (
    SELECT
        *,
        quantile_cont(score, $label_quantile::DOUBLE) OVER g AS low_cut,
        quantile_cont(score, 1.0 - $label_quantile::DOUBLE) OVER g AS high_cut
    FROM scored
    WHERE $label_rule IS DISTINCT FROM 'threshold'
    WINDOW g AS (PARTITION BY prompt_id, criterion)
),
labelled AS (
    SELECT * FROM thresholded
    UNION ALL
    SELECT
        prompt_id,
        candidate_id,
        criterion,
        score,
        spread,
        response,
        CASE
            WHEN score >= high_cut AND score > low_cut THEN true
            WHEN score <= low_cut AND score < high_cut THEN false
        END AS label
    FROM quantiles
),
prompt_texts AS (
    -- the last user message, once per prompt (not once per output row)
    SELECT prompt_id, list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt FROM prompts
)
SELECT
    content_id([s.candidate_id, s.criterion]) AS point_id,
    s.prompt_id,
    p.prompt,
    s.response AS completion,
    s.candidate_id,
    score AS reward,
    s.label,
    s.criterion,
    s.spread,
    CASE
        WHEN s.label IS NULL THEN 'quantile_middle'
        WHEN $max_spread IS NOT NULL AND s.spread > $max_spread THEN 'spread_above_max'
        WHEN $min_spread IS NOT NULL AND s.spread < $min_spread THEN 'spread_below_min'
    END AS drop_reason
FROM labelled AS s
LEFT JOIN prompt_texts AS p ON p.prompt_id = s.prompt_id
ORDER BY s.prompt_id, s.criterion, s.candidate_id
