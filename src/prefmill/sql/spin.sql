-- pairs (spin): self-play fine-tuning pairs (SPIN). For every prompt with a reference answer, each
-- of the current policy's usable samples is rejected against the reference, which is chosen.
-- `prefmill iterate` with mode: spin uses this file as the pairs SQL of every round.
--
-- Inputs: views prompts (reference), candidate_scores (scores.sql). Macro content_id(list).
-- Parameters: $tau  DOUBLE  temperature of soft_label, > 0
--
-- Output (the `pairs` table):
--   pair_id         VARCHAR  content_id([chosen_id, rejected_id, criterion, strategy])
--   prompt_id       VARCHAR
--   prompt          VARCHAR  last user message
--   chosen          VARCHAR  the prompt's reference answer
--   rejected        VARCHAR  a policy sample
--   chosen_id       VARCHAR  content_id(['reference', prompt_id])
--   rejected_id     VARCHAR  candidate_id of the sample
--   chosen_score    DOUBLE   1.0 (the reference is right by definition)
--   rejected_score  DOUBLE   the sample's score
--   margin          DOUBLE   1.0 - the sample's score (0 when the sample was also right)
--   soft_label      DOUBLE   1 / (1 + exp(-margin / $tau))
--   uncertainty     DOUBLE   the sample's judge spread
--   criterion       VARCHAR
--   weight          DOUBLE   1.0
--   strategy        VARCHAR  'spin'
--
-- A correct sample is still rejected (SPIN separates the data distribution from the policy's); its
-- margin is 0, which a SQL of your own can filter on.
SELECT
    content_id([content_id(['reference', s.prompt_id]), s.candidate_id, s.criterion, 'spin']) AS pair_id,
    s.prompt_id,
    s.prompt,
    p.reference AS chosen,
    s.response AS rejected,
    content_id(['reference', s.prompt_id]) AS chosen_id,
    s.candidate_id AS rejected_id,
    1.0::DOUBLE AS chosen_score,
    s.score AS rejected_score,
    1.0::DOUBLE - s.score AS margin,
    1.0 / (1.0 + exp(-(1.0::DOUBLE - s.score) / $tau)) AS soft_label,
    s.spread AS uncertainty,
    s.criterion,
    1.0::DOUBLE AS weight,
    'spin' AS strategy
FROM candidate_scores AS s
JOIN prompts AS p USING (prompt_id)
WHERE p.reference IS NOT NULL AND s.criterion = 'overall'
ORDER BY s.prompt_id, s.candidate_id
