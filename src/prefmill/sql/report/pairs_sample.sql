-- pairs_sample: a few pairs to read side by side (a deterministic sample: ordered by md5 of pair_id).
--
-- Inputs (views): pairs.
-- Parameters:
--   $limit  INTEGER  pairs to show
--
-- Output: pair_id, prompt, chosen, rejected, chosen_score, rejected_score, margin, criterion, strategy.
SELECT pair_id, prompt, chosen, rejected, chosen_score, rejected_score, margin, criterion, strategy
FROM pairs
ORDER BY md5(pair_id)
LIMIT $limit
