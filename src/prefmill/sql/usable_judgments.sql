-- usable_judgments: the one definition of a usable judgment, and of position-swap consistency, as
-- DuckDB table macros. Every reader of judgments uses them: scores.sql (candidate_scores),
-- selection.sql, the report aggregates (sql/report/*.sql), the dataset card and the fidelity report.
-- ``prefmill.sql.define_judgment_macros(con)`` runs this file on a connection where the view
-- `judgments` is bound (the macros read `judgments` when they are called).
--
-- usable_judgments(): the judgments that say something. Errors stay in the table as data; they are
-- only left out here.
--   granularity = 'outcome', parse_error IS NULL, and
--   mode 'point': score IS NOT NULL;
--   mode 'pair':  prefers_first IS NOT NULL, and other_candidate_id names another candidate.
--   Columns: those of `judgments`.
--
-- swap_pairs(): the usable pair verdicts judged in both orders. prefers_first = P(the response shown
--   first is better), so each row's preference for the pair's lower candidate id `lo` is
--   prefers_first when `lo` was shown first and 1 - prefers_first otherwise. One row per (judge,
--   criterion, granularity, unit_index, prompt_id, lo, hi) with rows in both orders 'ab' and 'ba'
--   (several rows of one order are averaged first):
--   judge, criterion, granularity VARCHAR; unit_index INTEGER; prompt_id, lo, hi VARCHAR
--   p_ab, p_ba   DOUBLE   P(lo is better) read from the 'ab' rows, and from the 'ba' rows
--   consistent   BOOLEAN  the two orders put that preference on the same side of 0.5 (a tie,
--                         exactly 0.5, is a side of its own)
CREATE OR REPLACE TEMP MACRO usable_judgments() AS TABLE
    SELECT *
    FROM judgments
    WHERE granularity = 'outcome'
      AND parse_error IS NULL
      AND (
          (mode = 'point' AND score IS NOT NULL)
          OR (
              mode = 'pair'
              AND prefers_first IS NOT NULL
              AND other_candidate_id IS NOT NULL
              AND other_candidate_id <> candidate_id
          )
      );

CREATE OR REPLACE TEMP MACRO swap_pairs() AS TABLE
    WITH oriented AS (
        SELECT
            judge,
            criterion,
            granularity,
            unit_index,
            prompt_id,
            least(candidate_id, other_candidate_id) AS lo,
            greatest(candidate_id, other_candidate_id) AS hi,
            "order",
            CASE WHEN candidate_id <= other_candidate_id THEN prefers_first ELSE 1.0 - prefers_first END
                AS p_lo
        FROM usable_judgments()
        WHERE mode = 'pair' AND "order" IN ('ab', 'ba')
    ),
    both_orders AS (
        SELECT
            judge,
            criterion,
            granularity,
            unit_index,
            prompt_id,
            lo,
            hi,
            avg(p_lo) FILTER (WHERE "order" = 'ab') AS p_ab,
            avg(p_lo) FILTER (WHERE "order" = 'ba') AS p_ba
        FROM oriented
        GROUP BY judge, criterion, granularity, unit_index, prompt_id, lo, hi
        HAVING count(*) FILTER (WHERE "order" = 'ab') > 0 AND count(*) FILTER (WHERE "order" = 'ba') > 0
    )
    SELECT *, sign(p_ab - 0.5) = sign(p_ba - 0.5) AS consistent
    FROM both_orders;
