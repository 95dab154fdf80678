-- pairs (best_vs_worst): for each (prompt, criterion) the highest-scored candidate is chosen and the
-- lowest-scored one rejected.
--
-- Inputs: view candidate_scores (scores.sql: prompt_id, candidate_id, criterion, prompt, response,
--         score, spread, ...). Macro content_id(list) = first 16 hex chars of sha256 of the list's
--         canonical JSON, equal to prefmill.ids.content_id (the runner defines it).
-- Parameters:
--   $min_margin  DOUBLE  keep a pair only when chosen_score - rejected_score >= $min_margin
--                        (ties never make a pair, whatever $min_margin is)
--   $tau         DOUBLE  temperature of soft_label, > 0
--
-- Output (the `pairs` table):
--   pair_id         VARCHAR  content_id([chosen_id, rejected_id, criterion, strategy])
--   prompt_id       VARCHAR
--   prompt          VARCHAR  last user message
--   chosen          VARCHAR  chosen response
--   rejected        VARCHAR  rejected response
--   chosen_id       VARCHAR  candidate_id of chosen
--   rejected_id     VARCHAR  candidate_id of rejected
--   chosen_score    DOUBLE
--   rejected_score  DOUBLE
--   margin          DOUBLE   chosen_score - rejected_score (> 0)
--   soft_label      DOUBLE   1 / (1 + exp(-margin / $tau)): P(chosen beats rejected)
--   uncertainty     DOUBLE   the larger judge spread of the two candidates
--   criterion       VARCHAR
--   weight          DOUBLE   1.0
--   strategy        VARCHAR  'best_vs_worst'
--
-- Ties on the best (worst) score are broken by the smallest candidate_id, so the output is the same
-- on every run. A (prompt, criterion) with a single scored candidate gives no pair.
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE.
WITH ranked AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY prompt_id, criterion ORDER BY score DESC, candidate_id)
            AS best_rank,
        row_number() OVER (PARTITION BY prompt_id, criterion ORDER BY score ASC, candidate_id)
            AS worst_rank
    FROM candidate_scores
),
matched AS (
    SELECT
        b.prompt_id,
        b.prompt,
        b.criterion,
        b.candidate_id AS chosen_id,
        w.candidate_id AS rejected_id,
        b.response AS chosen,
        w.response AS rejected,
        b.score AS chosen_score,
        w.score AS rejected_score,
        b.score - w.score AS margin,
        greatest(b.spread, w.spread) AS uncertainty,
        'best_vs_worst' AS strategy
    FROM ranked AS b
    JOIN ranked AS w
      ON w.prompt_id = b.prompt_id AND w.criterion = b.criterion
    WHERE b.best_rank = 1 AND w.worst_rank = 1
)
SELECT
    content_id([chosen_id, rejected_id, criterion, strategy]) AS pair_id,
    prompt_id,
    prompt,
    chosen,
    rejected,
    chosen_id,
    rejected_id,
    chosen_score,
    rejected_score,
    margin,
    1.0 / (1.0 + exp(-margin / $tau)) AS soft_label,
    uncertainty,
    criterion,
    1.0::DOUBLE AS weight,
    strategy
FROM matched
WHERE margin > 0 AND margin >= $min_margin
ORDER BY prompt_id, criterion
