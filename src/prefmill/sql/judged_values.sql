-- candidate_judged_values: the judges' scores of each (prompt, candidate, criterion), before the
-- candidates are read: candidate_score_values (score_values.sql) without the usable-candidate join and
-- its log-prob columns. The runner wraps this SELECT as
--     CREATE OR REPLACE TEMP VIEW candidate_judged_values AS <this file>
-- score_values.sql is this view joined with the usable candidates. The built-in points.sql and
-- pairs.sql's best_vs_worst read this view and join the usable candidates themselves, once, for
-- usability and the texts (and log-probs) together.
--
-- Inputs (views): judgments. Table criterion_weights (criterion VARCHAR, weight DOUBLE), filled by the
--         runner from the recipe's criterion_weights: weighted scalarisation. When it has rows, each
--         candidate scored on every listed criterion also gets a row with criterion 'weighted' and
--         score = sum(weight * score); empty, there are no such rows.
-- Parameters: none ($parameters cannot live in a view). The DuckDB variable `aggregation` picks how
--   judges are combined into `score`: 'mean' (default, also when unset), 'median' or 'vote'; the
--   runner sets it from the recipe's evaluation.aggregation (SET VARIABLE aggregation = 'median').
--   A 'weighted' row combines the chosen per-criterion scores.
--
-- Output: one row per (prompt_id, candidate_id, criterion) that has at least one usable judgment, of
-- any candidate id the judgments name (usable or not, in the candidates table or not): the columns of
-- candidate_score_values (score_values.sql) but logprob, n_tokens and logprob_per_token.
--
-- Usable judgments: usable_judgments() (sql/usable_judgments.sql, defined by the runner).
-- A pair judge's score of a candidate is its win rate: the mean, over the pair rows naming it, of
-- P(it is the better one): prefers_first where it was shown first, 1 - prefers_first where it was
-- shown second. Judging both orders (position swap) puts each candidate first once per pair, so a
-- judge that always prefers the first position gives every candidate 0.5. A pair-only recipe (an
-- LLM pair judge, human pair verdicts) thus scores candidates like a point judge does, and its
-- win rates join the other judges' scores in the mean / median / vote.
--
-- Position swap: swap_pairs() (sql/usable_judgments.sql) gives, for each (judge, criterion,
-- granularity, unit, two candidates) with rows in both orders, whether the orders agree.
--
-- One pass: the judge scores and the position-swapped comparisons are grouped once per (prompt,
-- candidate, criterion). A group that one judge alone scored (the usual case) has all its columns from
-- that pass (the judge's mean is the mean, the median and the vote's input; spread 0); only the groups
-- with several judges are grouped again per judge.
WITH judge_scores AS NOT MATERIALIZED (
    -- point verdicts as they are; each pair verdict gives both of its candidates their probability
    -- of being the better one (win rate): prefers_first to the one shown first, 1 - it to the other
    SELECT prompt_id, candidate_id, criterion, judge, score
    FROM usable_judgments()
    WHERE mode = 'point'
    UNION ALL
    SELECT prompt_id, candidate_id, criterion, judge, prefers_first
    FROM usable_judgments()
    WHERE mode = 'pair'
    UNION ALL
    SELECT prompt_id, other_candidate_id, criterion, judge, 1.0 - prefers_first
    FROM usable_judgments()
    WHERE mode = 'pair'
),
swapped AS (
    SELECT prompt_id, criterion, lo, hi, NOT consistent AS inconsistent FROM swap_pairs()
),
tagged AS (
    -- the judge scores and each candidate's position-swapped comparisons, grouped together below
    SELECT prompt_id, candidate_id, criterion, judge, score, NULL::BOOLEAN AS inconsistent
    FROM judge_scores
    UNION ALL
    SELECT prompt_id, lo, criterion, NULL, NULL, inconsistent FROM swapped
    UNION ALL
    SELECT prompt_id, hi, criterion, NULL, NULL, inconsistent FROM swapped
),
per_group AS (
    SELECT
        prompt_id,
        candidate_id,
        criterion,
        avg(score) AS judge_score,
        count(score) AS n_judgments,
        min(judge) = max(judge) AS one_judge,
        avg(inconsistent::INTEGER)::DOUBLE AS swap_inconsistency,
        count(inconsistent)::BIGINT AS n_swapped
    FROM tagged
    GROUP BY prompt_id, candidate_id, criterion
    HAVING count(score) > 0
),
single AS (
    SELECT
        prompt_id,
        candidate_id,
        criterion,
        judge_score AS score_mean,
        judge_score AS score_median,
        CASE WHEN judge_score >= 0.5 THEN 1.0 ELSE 0.0 END::DOUBLE AS score_vote,
        0.0::DOUBLE AS spread,
        n_judgments::BIGINT AS n_judgments,
        1::BIGINT AS n_judges,
        swap_inconsistency,
        n_swapped
    FROM per_group
    WHERE one_judge
),
per_judge AS (
    -- only the groups with several judges
    SELECT
        s.prompt_id,
        s.candidate_id,
        s.criterion,
        s.judge,
        avg(s.score) AS judge_score,
        count(*) AS n_judgments,
        any_value(g.swap_inconsistency) AS swap_inconsistency,
        any_value(g.n_swapped) AS n_swapped
    FROM judge_scores AS s
    JOIN (
        SELECT prompt_id, candidate_id, criterion, swap_inconsistency, n_swapped
        FROM per_group
        WHERE NOT one_judge
    ) AS g
      ON g.prompt_id = s.prompt_id AND g.candidate_id = s.candidate_id AND g.criterion = s.criterion
    GROUP BY s.prompt_id, s.candidate_id, s.criterion, s.judge
),
several AS (
    SELECT
        prompt_id,
        candidate_id,
        criterion,
        avg(judge_score) AS score_mean,
        median(judge_score)::DOUBLE AS score_median,
        CASE
            WHEN 2 * count(*) FILTER (WHERE judge_score >= 0.5) > count(*) THEN 1.0
            WHEN 2 * count(*) FILTER (WHERE judge_score >= 0.5) < count(*) THEN 0.0
            ELSE 0.5
        END::DOUBLE AS score_vote,
        coalesce(stddev_pop(judge_score), 0.0) AS spread,
        sum(n_judgments)::BIGINT AS n_judgments,
        count(*)::BIGINT AS n_judges,
        any_value(swap_inconsistency) AS swap_inconsistency,
        any_value(n_swapped) AS n_swapped
    FROM per_judge
    GROUP BY prompt_id, candidate_id, criterion
),
aggregated AS (
    SELECT
        *,
        CASE coalesce(getvariable('aggregation'), 'mean')
            WHEN 'mean' THEN score_mean
            WHEN 'median' THEN score_median
            WHEN 'vote' THEN score_vote
            ELSE error('candidate_scores: aggregation must be mean, median or vote, not '
                       || getvariable('aggregation')::VARCHAR)
        END AS score
    FROM (SELECT * FROM single UNION ALL SELECT * FROM several)
),
weighted AS (
    -- one 'weighted' row per candidate scored on every weighted criterion
    SELECT
        s.prompt_id,
        s.candidate_id,
        'weighted' AS criterion,
        sum(w.weight * s.score) AS score_mean,
        sum(w.weight * s.score) AS score_median,
        sum(w.weight * s.score) AS score_vote,
        max(s.spread) AS spread,
        sum(s.n_judgments)::BIGINT AS n_judgments,
        max(s.n_judges)::BIGINT AS n_judges,
        sum(w.weight * s.score) AS score
    FROM aggregated AS s
    JOIN criterion_weights AS w ON w.criterion = s.criterion
    GROUP BY s.prompt_id, s.candidate_id
    HAVING count(*) = (SELECT count(*) FROM criterion_weights)
),
all_scores AS (
    SELECT * FROM aggregated
    UNION ALL BY NAME
    SELECT * FROM weighted
)
SELECT
    prompt_id,
    candidate_id,
    criterion,
    round(score, 12) AS score,
    spread,
    n_judgments,
    n_judges,
    score_mean,
    score_median,
    score_vote,
    swap_inconsistency,
    coalesce(n_swapped, 0)::BIGINT AS n_swapped
FROM all_scores
