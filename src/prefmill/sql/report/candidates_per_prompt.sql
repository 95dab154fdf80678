-- candidates_per_prompt: how many usable candidates each prompt got, as a distribution.
--
-- Inputs (views): prompts, candidates.
-- Parameters: none.
--
-- Output: one row per count of usable candidates (error IS NULL), including 0 for prompts whose every
-- candidate failed or that got none.
--   n_candidates  BIGINT  usable candidates of a prompt
--   n_prompts     BIGINT  prompts with exactly that many
--   n_failed      BIGINT  failed candidates (error set) of those prompts, summed
WITH per_prompt AS (
    SELECT
        p.prompt_id,
        count(c.candidate_id) FILTER (WHERE c.error IS NULL) AS n_ok,
        count(c.candidate_id) FILTER (WHERE c.error IS NOT NULL) AS n_err
    FROM prompts AS p
    LEFT JOIN candidates AS c ON c.prompt_id = p.prompt_id
    GROUP BY p.prompt_id
)
SELECT
    n_ok::BIGINT AS n_candidates,
    count(*)::BIGINT AS n_prompts,
    sum(n_err)::BIGINT AS n_failed
FROM per_prompt
GROUP BY n_ok
ORDER BY n_ok
