-- selection: filters over the pairs that pairs.sql (or your pairs SQL) made. Every row is returned
-- with a drop_reason; the runner keeps the rows where it is NULL and counts the others by reason into
-- the manifest's stats (stats.removed), so every filter reports what it removed and why.
--
-- Inputs: table pairs_unfiltered (the pairs output, with implicit_margin when it has one), view
--         judgments, read through usable_judgments() and swap_pairs() (sql/usable_judgments.sql). Pair-wise judgments (mode 'pair'), as the LLM judge writes them: candidate_id is
--         the response shown first in that row and other_candidate_id the one shown second (order
--         'ab' shows the lower id first, 'ba' the higher one); prefers_first = P(the response shown
--         first, candidate_id, is better).
-- Parameters (a NULL parameter switches its filter off):
--   $min_margin             DOUBLE   explicit margin: drop pairs with margin < $min_margin
--   $min_implicit_margin    DOUBLE   implicit margin: drop pairs whose policy log-prob gap
--                                    (implicit_margin) is below it, or unknown; with $min_margin both
--                                    are required (BeeS)
--   $min_spread, $max_spread DOUBLE  ensemble spread: keep pairs with uncertainty in the band
--   $drop_swap_inconsistent BOOLEAN  drop pairs that a pair-wise judge preferred differently when
--                                    the two responses swapped places
--   $min_entropy, $max_entropy DOUBLE judge entropy band (bits, 0..1) of judge_preference
--
-- Output: the input columns, then
--   judge_preference   DOUBLE   mean P(chosen better) over the pair-wise judgments of this pair; the
--                               pair's soft_label when it has none
--   judge_entropy      DOUBLE   binary entropy of judge_preference in bits (0 sure .. 1 undecided)
--   swap_inconsistent  BOOLEAN  a judge's two orders disagree (NULL: no judge saw both orders)
--   drop_reason        VARCHAR  the first filter that removes the row, NULL when it is kept
--
-- Pair-wise judgments of criterion 'overall' also count for the derived criteria 'weighted' and
-- 'pareto'.
WITH pair_verdicts AS (
    SELECT
        least(candidate_id, other_candidate_id) AS lo,
        greatest(candidate_id, other_candidate_id) AS hi,
        candidate_id AS a,
        judge,
        criterion,
        prefers_first AS p_a
    FROM usable_judgments()
    WHERE mode = 'pair'
),
verdict_criterion AS (
    -- the criterion of the pair-wise verdicts that count for a pair
    SELECT
        pair_id,
        least(chosen_id, rejected_id) AS lo,
        greatest(chosen_id, rejected_id) AS hi,
        chosen_id,
        CASE WHEN criterion IN ('weighted', 'pareto') THEN 'overall' ELSE criterion END AS criterion
    FROM pairs_unfiltered
),
oriented AS (
    SELECT
        p.pair_id,
        CASE WHEN v.a = p.chosen_id THEN v.p_a ELSE 1.0 - v.p_a END AS p_chosen
    FROM verdict_criterion AS p
    JOIN pair_verdicts AS v ON v.lo = p.lo AND v.hi = p.hi AND v.criterion = p.criterion
),
per_judge AS (
    -- swap_pairs() (sql/usable_judgments.sql): a judge's two orders of this pair disagree
    SELECT p.pair_id, NOT s.consistent AS inconsistent
    FROM verdict_criterion AS p
    JOIN swap_pairs() AS s ON s.lo = p.lo AND s.hi = p.hi AND s.criterion = p.criterion
),
per_pair AS (
    SELECT o.pair_id, avg(o.p_chosen) AS judge_preference, any_value(j.swap_inconsistent) AS swap_inconsistent
    FROM oriented AS o
    LEFT JOIN (
        SELECT pair_id, bool_or(inconsistent) AS swap_inconsistent FROM per_judge GROUP BY pair_id
    ) AS j ON j.pair_id = o.pair_id
    GROUP BY o.pair_id
),
measured AS (
    SELECT
        p.*,
        coalesce(s.judge_preference, p.soft_label) AS judge_preference,
        s.swap_inconsistent
    FROM pairs_unfiltered AS p
    LEFT JOIN per_pair AS s ON s.pair_id = p.pair_id
),
with_entropy AS (
    SELECT
        *,
        CASE
            WHEN judge_preference IS NULL THEN NULL
            WHEN judge_preference <= 0.0 OR judge_preference >= 1.0 THEN 0.0
            ELSE -(judge_preference * log2(judge_preference)
                   + (1.0 - judge_preference) * log2(1.0 - judge_preference))
        END AS judge_entropy
    FROM measured
)
SELECT
    *,
    CASE
        WHEN $min_margin IS NOT NULL AND margin < $min_margin THEN 'explicit_margin'
        WHEN $min_implicit_margin IS NOT NULL AND implicit_margin IS NULL THEN 'implicit_margin_unknown'
        WHEN $min_implicit_margin IS NOT NULL AND implicit_margin < $min_implicit_margin THEN 'implicit_margin'
        WHEN $max_spread IS NOT NULL AND uncertainty > $max_spread THEN 'spread_above_max'
        WHEN $min_spread IS NOT NULL AND uncertainty < $min_spread THEN 'spread_below_min'
        WHEN $drop_swap_inconsistent AND swap_inconsistent THEN 'swap_inconsistent'
        WHEN $min_entropy IS NOT NULL AND judge_entropy < $min_entropy THEN 'entropy_below_min'
        WHEN $max_entropy IS NOT NULL AND judge_entropy > $max_entropy THEN 'entropy_above_max'
    END AS drop_reason
FROM with_entropy
