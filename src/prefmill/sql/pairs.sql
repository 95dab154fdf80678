-- pairs: (prompt, chosen, rejected) rows made by one or more strategies. Ties never become pairs.
--
-- Inputs: view candidate_scores (scores.sql: prompt_id, candidate_id, criterion, prompt, response,
--         score, spread, logprob_per_token, ...); table candidate_embeddings (candidate_id, embedding
--         FLOAT[]: unit-length sentence embeddings, filled by the runner when 'diverse' is asked for,
--         else empty). Macro content_id(list) = first 16 hex chars of sha256 of the list's canonical
--         JSON, equal to prefmill.ids.content_id (the runner defines it).
-- Parameters:
--   $strategies          VARCHAR[]  any of
--       'best_vs_worst'   per (prompt, criterion): highest score chosen, lowest rejected
--       'all_pairs'       every ordered pair with chosen score > rejected score
--       'best_vs_random'  highest score chosen, a seeded-random lower-scored candidate rejected
--       'pareto'          across criteria: chosen no worse on every criterion and better on one
--                         (criterion 'pareto'; prompts with >= 2 criteria; scores are criterion means)
--       'diverse'         DivPO: among candidates scoring >= the group's $diversity_quantile the most
--                         semantically distinct one is chosen, among those below it the least distinct
--                         one is rejected (distinctness = 1 - mean cosine similarity to the prompt's
--                         other candidates)
--   $seed                BIGINT     seed of 'best_vs_random'
--   $diversity_quantile  DOUBLE     quality split of 'diverse', in [0, 1]
--   $tau                 DOUBLE     temperature of soft_label, > 0
--   $weight_clip         DOUBLE     WPO weights are clipped to [1 / $weight_clip, $weight_clip]
--
-- Output (the `pairs` table, plus implicit_margin); selection.sql then filters these rows:
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
--   weight          DOUBLE   WPO-style policy-aware weight: exp(lc + lr - mean of (lc + lr) over the
--                            (prompt, criterion, strategy)), lc / lr the per-token policy log-probs of
--                            chosen / rejected, clipped to [1/$weight_clip, $weight_clip]; 1.0 when a
--                            log-prob is missing
--   strategy        VARCHAR  the strategy that made the pair
--   implicit_margin DOUBLE   lc - lr: the policy's own log-prob gap (NULL without log-probs)
--
-- Ties on the best (worst) score are broken by the smallest candidate_id, so the output is the same
-- on every run. A (prompt, criterion) with a single scored candidate, or with all scores equal, gives
-- no pair.
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
best AS (
    SELECT * FROM ranked WHERE best_rank = 1
),
best_vs_worst AS (
    SELECT b.candidate_id AS chosen_id, w.candidate_id AS rejected_id, b.criterion, 'best_vs_worst' AS strategy
    FROM (SELECT * FROM best WHERE list_contains($strategies, 'best_vs_worst')) AS b
    JOIN ranked AS w ON w.prompt_id = b.prompt_id AND w.criterion = b.criterion AND w.worst_rank = 1
    WHERE b.score > w.score
),
all_pairs AS (
    SELECT a.candidate_id AS chosen_id, b.candidate_id AS rejected_id, a.criterion, 'all_pairs' AS strategy
    FROM (SELECT * FROM candidate_scores WHERE list_contains($strategies, 'all_pairs')) AS a
    JOIN candidate_scores AS b ON b.prompt_id = a.prompt_id AND b.criterion = a.criterion
    WHERE a.score > b.score
),
best_vs_random AS (
    SELECT b.candidate_id AS chosen_id, r.candidate_id AS rejected_id, b.criterion, 'best_vs_random' AS strategy
    FROM (SELECT * FROM best WHERE list_contains($strategies, 'best_vs_random')) AS b
    JOIN candidate_scores AS r ON r.prompt_id = b.prompt_id AND r.criterion = b.criterion
    WHERE r.score < b.score
    QUALIFY row_number() OVER (
        PARTITION BY b.prompt_id, b.criterion
        ORDER BY md5(concat_ws('|', $seed::VARCHAR, b.prompt_id, b.criterion, r.candidate_id))
    ) = 1
),
criteria_per_prompt AS (
    SELECT prompt_id, count(DISTINCT criterion) AS n_criteria
    FROM candidate_scores
    WHERE list_contains($strategies, 'pareto') AND criterion NOT IN ('weighted')
    GROUP BY prompt_id
),
pareto AS (
    SELECT a.candidate_id AS chosen_id, b.candidate_id AS rejected_id, 'pareto' AS criterion, 'pareto' AS strategy
    FROM (SELECT * FROM candidate_scores WHERE list_contains($strategies, 'pareto')) AS a
    JOIN candidate_scores AS b
      ON b.prompt_id = a.prompt_id AND b.criterion = a.criterion AND b.candidate_id <> a.candidate_id
    JOIN criteria_per_prompt AS n ON n.prompt_id = a.prompt_id
    WHERE a.criterion NOT IN ('weighted') AND n.n_criteria >= 2
    GROUP BY a.prompt_id, a.candidate_id, b.candidate_id, n.n_criteria
    HAVING count(*) = n.n_criteria AND bool_and(a.score >= b.score) AND bool_or(a.score > b.score)
),
pareto_scores AS (
    SELECT candidate_id, 'pareto' AS criterion, avg(score) AS score, max(spread) AS spread
    FROM candidate_scores
    WHERE list_contains($strategies, 'pareto') AND criterion NOT IN ('weighted')
    GROUP BY candidate_id
),
distinctness AS (
    SELECT a.prompt_id, a.candidate_id, 1.0 - avg(list_cosine_similarity(ea.embedding, eb.embedding)) AS d
    FROM (
        SELECT DISTINCT prompt_id, candidate_id FROM candidate_scores
        WHERE list_contains($strategies, 'diverse')
    ) AS a
    JOIN (SELECT DISTINCT prompt_id, candidate_id FROM candidate_scores) AS b
      ON b.prompt_id = a.prompt_id AND b.candidate_id <> a.candidate_id
    JOIN candidate_embeddings AS ea ON ea.candidate_id = a.candidate_id
    JOIN candidate_embeddings AS eb ON eb.candidate_id = b.candidate_id
    GROUP BY a.prompt_id, a.candidate_id
),
diverse_split AS (
    SELECT
        s.*,
        d.d,
        s.score >= quantile_cont(s.score, $diversity_quantile::DOUBLE)
            OVER (PARTITION BY s.prompt_id, s.criterion) AS high
    FROM candidate_scores AS s
    JOIN distinctness AS d ON d.candidate_id = s.candidate_id AND d.prompt_id = s.prompt_id
),
diverse AS (
    SELECT h.candidate_id AS chosen_id, l.candidate_id AS rejected_id, h.criterion, 'diverse' AS strategy
    FROM (
        SELECT * FROM diverse_split WHERE high
        QUALIFY row_number() OVER (PARTITION BY prompt_id, criterion ORDER BY d DESC, candidate_id) = 1
    ) AS h
    JOIN (
        SELECT * FROM diverse_split WHERE NOT high
        QUALIFY row_number() OVER (PARTITION BY prompt_id, criterion ORDER BY d ASC, candidate_id) = 1
    ) AS l ON l.prompt_id = h.prompt_id AND l.criterion = h.criterion
    WHERE h.score > l.score
),
chosen_pairs AS (
    SELECT * FROM best_vs_worst
    UNION ALL SELECT * FROM all_pairs
    UNION ALL SELECT * FROM best_vs_random
    UNION ALL SELECT * FROM pareto
    UNION ALL SELECT * FROM diverse
),
scores AS (
    SELECT candidate_id, criterion, score, spread FROM candidate_scores
    UNION ALL
    SELECT candidate_id, criterion, score, spread FROM pareto_scores
),
texts AS (
    SELECT DISTINCT ON (candidate_id) candidate_id, prompt_id, prompt, response, logprob_per_token
    FROM candidate_scores
),
matched AS (
    SELECT
        c.prompt_id,
        c.prompt,
        p.criterion,
        p.chosen_id,
        p.rejected_id,
        c.response AS chosen,
        r.response AS rejected,
        cs.score AS chosen_score,
        rs.score AS rejected_score,
        cs.score - rs.score AS margin,
        greatest(cs.spread, rs.spread) AS uncertainty,
        p.strategy,
        c.logprob_per_token - r.logprob_per_token AS implicit_margin,
        c.logprob_per_token + r.logprob_per_token AS pair_logprob
    FROM chosen_pairs AS p
    JOIN texts AS c ON c.candidate_id = p.chosen_id
    JOIN texts AS r ON r.candidate_id = p.rejected_id
    JOIN scores AS cs ON cs.candidate_id = p.chosen_id AND cs.criterion = p.criterion
    JOIN scores AS rs ON rs.candidate_id = p.rejected_id AND rs.criterion = p.criterion
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
    CASE
        WHEN pair_logprob IS NULL THEN 1.0
        ELSE least(
            greatest(
                exp(pair_logprob - avg(pair_logprob) OVER (PARTITION BY prompt_id, criterion, strategy)),
                1.0 / $weight_clip
            ),
            $weight_clip
        )
    END::DOUBLE AS weight,
    strategy,
    implicit_margin
FROM matched
WHERE margin > 0
ORDER BY prompt_id, criterion, strategy, chosen_id, rejected_id
