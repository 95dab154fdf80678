-- pairs: (prompt, chosen, rejected) rows made by one or more strategies. Ties never become pairs.
--
-- Inputs: view candidate_score_values (score_values.sql: prompt_id, candidate_id, criterion, score,
--         spread, logprob_per_token, ...: candidate_scores without its texts), view
--         candidate_judged_values (judged_values.sql: the same scores before the candidates join),
--         views candidates and prompts (the texts of the pairs made); table candidate_embeddings (candidate_id, embedding
--         FLOAT[]: unit-length sentence embeddings, filled by the runner when 'diverse' is asked for,
--         else empty); table candidate_steps (candidate_id, step_index, text, char_start: the
--         steps table, filled by the runner when 'step_dpo' is asked for, else empty) and view
--         judgments (its granularity 'step' rows). Macro content_id(list) = first 16 hex chars of sha256 of the list's canonical
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
--       'step_dpo'        Step-DPO: two candidates of a prompt whose steps (table candidate_steps) are
--                         the same texts up to step k and differ at step k + 1, where every step up to
--                         k is labelled correct in both, step k + 1 correct in the chosen one and wrong
--                         in the rejected one (step labels as the trl-stepwise export reads them).
--                         chosen = the shared prefix (the chosen response up to step k + 1) + its step
--                         k + 1, rejected = the same prefix + the rejected step k + 1: the prefix's
--                         tokens cancel in DPO's log-ratios, so DPO on these pairs is Step-DPO.
--                         criterion 'step', scores the labels (1 and 0), margin 1, weight 1
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
-- no pair. Row order: none here; the runner reads the selected rows out ordered by (prompt_id,
-- criterion, strategy, chosen_id, rejected_id) (the table's row_order, storage/tables/pairs.py): one
-- sort, after selection, instead of one here and one again after selection's joins.
--
-- Plan: best_vs_worst reads the judged scores (candidate_judged_values) and joins the usable
-- candidates once, for usability and log-prob together (the join candidate_score_values would make),
-- then one GROUP BY with min_by keeps the best and the worst of each group, narrow: carrying the
-- texts through that GROUP BY made it 3x slower at 10M candidates (it spilled). The other strategies
-- give (prompt, criterion, chosen, rejected) with their scores, spreads and log-probs from
-- candidate_score_values alone; their weights are computed over those narrow rows. Every strategy's
-- responses are joined last, for the pairs made only, and so are the prompt texts. A strategy not in
-- $strategies is planned away.
--
-- Writing your own: select from candidate_scores (and prompts / candidates / judgments), return these
-- columns, use named $parameters (set them in the recipe), write lambdas as `lambda x: ...`, and cast
-- bare decimal literals (1.0 is DECIMAL in DuckDB) with ::DOUBLE where a column must be DOUBLE. End
-- with an ORDER BY for a reproducible row order: the runner keeps your SQL's own order (the built-in
-- SQL is the one it sorts).
WITH usable_candidates AS NOT MATERIALIZED (
    -- usability, the policy's per-token log-prob (as score_values.sql computes it) and the response
    -- (not materialized: each join reads what it needs: best_vs_worst's the ids and log-probs, the
    -- last joins the responses)
    SELECT
        candidate_id,
        prompt_id,
        response,
        coalesce(policy_logprob, logprob) / nullif(n_tokens, 0) AS lpt
    FROM (SELECT * FROM candidates UNION ALL BY NAME (SELECT NULL::DOUBLE AS policy_logprob WHERE false))
    WHERE error IS NULL AND response IS NOT NULL
),
scored AS (
    -- best_vs_worst: the judged scores (judged_values.sql) of the usable candidates, with the
    -- candidate's log-prob from the same join (narrow: the texts are joined last, for the pairs made)
    SELECT s.prompt_id, s.candidate_id, s.criterion, s.score, s.spread, c.lpt
    FROM candidate_judged_values AS s
    JOIN usable_candidates AS c ON c.candidate_id = s.candidate_id AND c.prompt_id = s.prompt_id
    WHERE list_contains($strategies, 'best_vs_worst')
),
best_vs_worst AS (
    -- per (prompt, criterion): the best (highest score, then smallest candidate_id) chosen and the
    -- worst (lowest score, then smallest candidate_id) rejected
    SELECT
        prompt_id,
        criterion,
        'best_vs_worst' AS strategy,
        best.id AS chosen_id,
        worst.id AS rejected_id,
        best.score AS chosen_score,
        worst.score AS rejected_score,
        best.spread AS chosen_spread,
        worst.spread AS rejected_spread,
        best.lpt AS chosen_lpt,
        worst.lpt AS rejected_lpt
    FROM (
        SELECT
            prompt_id,
            criterion,
            min_by(
                {'id': candidate_id, 'score': score, 'spread': spread, 'lpt': lpt},
                (-score, candidate_id)
            ) AS best,
            min_by(
                {'id': candidate_id, 'score': score, 'spread': spread, 'lpt': lpt},
                (score, candidate_id)
            ) AS worst
        FROM scored
        GROUP BY prompt_id, criterion
    )
    WHERE best.score > worst.score
),
extremes AS (
    -- best_vs_random: the best of each group among the usable candidates
    SELECT
        prompt_id,
        criterion,
        min_by(
            {'id': candidate_id, 'score': score, 'spread': spread, 'lpt': logprob_per_token},
            (-score, candidate_id)
        ) AS best
    FROM candidate_score_values
    WHERE list_contains($strategies, 'best_vs_random')
    GROUP BY prompt_id, criterion
),
all_pairs AS (
    SELECT
        a.prompt_id,
        a.criterion,
        'all_pairs' AS strategy,
        a.candidate_id AS chosen_id,
        b.candidate_id AS rejected_id,
        a.score AS chosen_score,
        b.score AS rejected_score,
        a.spread AS chosen_spread,
        b.spread AS rejected_spread,
        a.logprob_per_token AS chosen_lpt,
        b.logprob_per_token AS rejected_lpt
    FROM candidate_score_values AS a
    JOIN candidate_score_values AS b ON b.prompt_id = a.prompt_id AND b.criterion = a.criterion
    WHERE list_contains($strategies, 'all_pairs') AND a.score > b.score
),
best_vs_random AS (
    SELECT
        b.prompt_id,
        b.criterion,
        'best_vs_random' AS strategy,
        b.best.id AS chosen_id,
        r.candidate_id AS rejected_id,
        b.best.score AS chosen_score,
        r.score AS rejected_score,
        b.best.spread AS chosen_spread,
        r.spread AS rejected_spread,
        b.best.lpt AS chosen_lpt,
        r.logprob_per_token AS rejected_lpt
    FROM extremes AS b
    JOIN candidate_score_values AS r ON r.prompt_id = b.prompt_id AND r.criterion = b.criterion
    WHERE list_contains($strategies, 'best_vs_random') AND r.score < b.best.score
    QUALIFY row_number() OVER (
        PARTITION BY b.prompt_id, b.criterion
        ORDER BY md5(concat_ws('|', $seed::VARCHAR, b.prompt_id, b.criterion, r.candidate_id))
    ) = 1
),
pareto_base AS (
    SELECT * FROM candidate_score_values
    WHERE list_contains($strategies, 'pareto') AND criterion NOT IN ('weighted')
),
criteria_per_prompt AS (
    SELECT prompt_id, count(DISTINCT criterion) AS n_criteria
    FROM pareto_base
    GROUP BY prompt_id
),
pareto_scores AS (
    -- a candidate's pareto score: its mean over criteria
    SELECT candidate_id, avg(score) AS score, max(spread) AS spread, any_value(logprob_per_token) AS lpt
    FROM pareto_base
    GROUP BY candidate_id
),
pareto_ids AS (
    SELECT a.prompt_id, a.candidate_id AS chosen_id, b.candidate_id AS rejected_id
    FROM pareto_base AS a
    JOIN pareto_base AS b
      ON b.prompt_id = a.prompt_id AND b.criterion = a.criterion AND b.candidate_id <> a.candidate_id
    JOIN criteria_per_prompt AS n ON n.prompt_id = a.prompt_id
    WHERE n.n_criteria >= 2
    GROUP BY a.prompt_id, a.candidate_id, b.candidate_id, n.n_criteria
    HAVING count(*) = n.n_criteria AND bool_and(a.score >= b.score) AND bool_or(a.score > b.score)
),
pareto AS (
    SELECT
        p.prompt_id,
        'pareto' AS criterion,
        'pareto' AS strategy,
        p.chosen_id,
        p.rejected_id,
        c.score AS chosen_score,
        r.score AS rejected_score,
        c.spread AS chosen_spread,
        r.spread AS rejected_spread,
        c.lpt AS chosen_lpt,
        r.lpt AS rejected_lpt
    FROM pareto_ids AS p
    JOIN pareto_scores AS c ON c.candidate_id = p.chosen_id
    JOIN pareto_scores AS r ON r.candidate_id = p.rejected_id
),
diverse_base AS (
    SELECT * FROM candidate_score_values WHERE list_contains($strategies, 'diverse')
),
distinctness AS (
    SELECT a.prompt_id, a.candidate_id, 1.0 - avg(list_cosine_similarity(ea.embedding, eb.embedding)) AS d
    FROM (SELECT DISTINCT prompt_id, candidate_id FROM diverse_base) AS a
    JOIN (SELECT DISTINCT prompt_id, candidate_id FROM diverse_base) AS b
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
    FROM diverse_base AS s
    JOIN distinctness AS d ON d.candidate_id = s.candidate_id AND d.prompt_id = s.prompt_id
),
diverse AS (
    SELECT
        h.prompt_id,
        h.criterion,
        'diverse' AS strategy,
        h.candidate_id AS chosen_id,
        l.candidate_id AS rejected_id,
        h.score AS chosen_score,
        l.score AS rejected_score,
        h.spread AS chosen_spread,
        l.spread AS rejected_spread,
        h.logprob_per_token AS chosen_lpt,
        l.logprob_per_token AS rejected_lpt
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
made AS (
    -- the other strategies' pairs, narrow (like best_vs_worst's): their texts are joined last
    SELECT * FROM all_pairs
    UNION ALL SELECT * FROM best_vs_random
    UNION ALL SELECT * FROM pareto
    UNION ALL SELECT * FROM diverse
),
weighed AS (
    SELECT
        *,
        chosen_score - rejected_score AS margin,
        chosen_lpt + rejected_lpt AS pair_logprob
    FROM made
    WHERE chosen_score - rejected_score > 0
),
measured AS (
    SELECT
        content_id([chosen_id, rejected_id, criterion, strategy]) AS pair_id,
        prompt_id,
        chosen_id,
        rejected_id,
        chosen_score,
        rejected_score,
        margin,
        1.0 / (1.0 + exp(-margin / $tau)) AS soft_label,
        greatest(chosen_spread, rejected_spread) AS uncertainty,
        criterion,
        CASE
            WHEN pair_logprob IS NULL THEN 1.0
            ELSE least(
                greatest(exp(pair_logprob - group_logprob), 1.0 / $weight_clip),
                $weight_clip
            )
        END::DOUBLE AS weight,
        strategy,
        chosen_lpt - rejected_lpt AS implicit_margin
    FROM (
        -- the mean pair log-prob of the (prompt, criterion, strategy): best_vs_random and diverse
        -- (like best_vs_worst, below) make one pair per (prompt, criterion), whose mean is its own;
        -- the window runs over the other strategies' rows only
        SELECT *, pair_logprob AS group_logprob
        FROM weighed
        WHERE strategy IN ('best_vs_random', 'diverse')
        UNION ALL
        SELECT *, avg(pair_logprob) OVER (PARTITION BY prompt_id, criterion, strategy) AS group_logprob
        FROM weighed
        WHERE strategy NOT IN ('best_vs_random', 'diverse')
    )
),
best_vs_worst_measured AS (
    -- best_vs_worst's pairs with the columns of `measured` (the same expressions; one pair per
    -- (prompt, criterion, strategy), so the mean pair log-prob is the pair's own)
    SELECT
        content_id([chosen_id, rejected_id, criterion, strategy]) AS pair_id,
        prompt_id,
        chosen_id,
        rejected_id,
        chosen_score,
        rejected_score,
        margin,
        1.0 / (1.0 + exp(-margin / $tau)) AS soft_label,
        greatest(chosen_spread, rejected_spread) AS uncertainty,
        criterion,
        CASE
            WHEN pair_logprob IS NULL THEN 1.0
            ELSE least(
                greatest(exp(pair_logprob - pair_logprob), 1.0 / $weight_clip),
                $weight_clip
            )
        END::DOUBLE AS weight,
        strategy,
        chosen_lpt - rejected_lpt AS implicit_margin
    FROM (
        SELECT *, chosen_score - rejected_score AS margin, chosen_lpt + rejected_lpt AS pair_logprob
        FROM best_vs_worst
    )
    WHERE margin > 0
),
responses AS (
    SELECT candidate_id, response FROM usable_candidates
),
prompt_texts AS (
    -- the last user message, once per prompt (not once per output row)
    SELECT prompt_id, list_filter(messages, lambda m: m.role = 'user')[-1].content AS prompt FROM prompts
),
step_labels AS (
    -- 'step_dpo': one label per (candidate, step), true when every step-level judgment of it says
    -- correct (a rollout judge's hard label, else score >= 0.5); only the step-consensus judge's rows
    -- count when there are any (the rule of the trl-stepwise export)
    SELECT
        candidate_id,
        unit_index AS step_index,
        bool_and(coalesce(
            TRY_CAST(nullif(regexp_extract(raw, '"hard": ([0-9.]+)', 1), '') AS DOUBLE) > 0,
            score >= 0.5
        )) AS ok
    FROM judgments
    WHERE list_contains($strategies, 'step_dpo') AND granularity = 'step' AND score IS NOT NULL
        AND parse_error IS NULL
        AND (judge = 'step-consensus' OR NOT EXISTS (
            SELECT 1 FROM judgments WHERE judge = 'step-consensus' AND granularity = 'step'
        ))
    GROUP BY candidate_id, unit_index
),
step_chains AS (
    -- the candidates with a label on every step: step texts, start offsets and labels in order
    SELECT
        c.prompt_id,
        s.candidate_id,
        list(s.text ORDER BY s.step_index) AS texts,
        list(s.char_start ORDER BY s.step_index) AS starts,
        list(l.ok ORDER BY s.step_index) AS oks
    FROM candidate_steps AS s
    JOIN candidates AS c ON c.candidate_id = s.candidate_id
    LEFT JOIN step_labels AS l ON l.candidate_id = s.candidate_id AND l.step_index = s.step_index
    WHERE list_contains($strategies, 'step_dpo')
    GROUP BY c.prompt_id, s.candidate_id
    HAVING count(l.ok) = count(*)
),
step_forks AS (
    -- every ordered pair of chains of a prompt, and k: how many leading steps they share (text)
    SELECT
        a.prompt_id,
        a.candidate_id AS chosen_id,
        b.candidate_id AS rejected_id,
        a.texts AS a_texts,
        b.texts AS b_texts,
        a.starts AS a_starts,
        a.oks AS a_oks,
        b.oks AS b_oks,
        list_position(
            list_transform(range(least(len(a.texts), len(b.texts))), lambda i: a.texts[i + 1] = b.texts[i + 1]),
            false
        ) - 1 AS k
    FROM step_chains AS a
    JOIN step_chains AS b ON b.prompt_id = a.prompt_id AND b.candidate_id <> a.candidate_id
),
step_pairs AS (
    SELECT
        content_id([f.chosen_id, f.rejected_id, 'step', 'step_dpo']) AS pair_id,
        f.prompt_id,
        left(c.response, f.a_starts[f.k + 1]::BIGINT) || f.a_texts[f.k + 1] AS chosen,
        left(c.response, f.a_starts[f.k + 1]::BIGINT) || f.b_texts[f.k + 1] AS rejected,
        f.chosen_id,
        f.rejected_id
    FROM step_forks AS f
    JOIN responses AS c ON c.candidate_id = f.chosen_id
    WHERE f.k IS NOT NULL AND f.a_oks[f.k + 1] AND NOT f.b_oks[f.k + 1]
        AND NOT list_contains(f.a_oks[1:f.k], false) AND NOT list_contains(f.b_oks[1:f.k], false)
)
SELECT
    m.pair_id,
    m.prompt_id,
    p.prompt,
    c.response AS chosen,
    r.response AS rejected,
    m.chosen_id,
    m.rejected_id,
    m.chosen_score,
    m.rejected_score,
    m.margin,
    m.soft_label,
    m.uncertainty,
    m.criterion,
    m.weight,
    m.strategy,
    m.implicit_margin
FROM (SELECT * FROM measured UNION ALL SELECT * FROM best_vs_worst_measured) AS m
JOIN responses AS c ON c.candidate_id = m.chosen_id
JOIN responses AS r ON r.candidate_id = m.rejected_id
LEFT JOIN prompt_texts AS p ON p.prompt_id = m.prompt_id
UNION ALL
SELECT
    s.pair_id,
    s.prompt_id,
    p.prompt,
    s.chosen,
    s.rejected,
    s.chosen_id,
    s.rejected_id,
    1.0::DOUBLE AS chosen_score,
    0.0::DOUBLE AS rejected_score,
    1.0::DOUBLE AS margin,
    1.0 / (1.0 + exp(-1.0 / $tau)) AS soft_label,
    NULL::DOUBLE AS uncertainty,
    'step' AS criterion,
    1.0::DOUBLE AS weight,
    'step_dpo' AS strategy,
    NULL::DOUBLE AS implicit_margin
FROM step_pairs AS s
LEFT JOIN prompt_texts AS p ON p.prompt_id = s.prompt_id
