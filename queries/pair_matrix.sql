-- metric: Pair scores by responder role and request channel, with intervals
-- depends: pairs
-- order: responder_role, channel
--
-- Pair scores (DESIGN 4.2) by responder role (agent or bot) and request channel, over the pairs
-- whose request falls in the period, with a 95% normal interval of the mean score
-- (mean ± 1.96·sd/√n, kept within 0-100; NULL with fewer than 2 scored pairs).
WITH cells AS (
    SELECT responder_role, request_channel AS channel,
           COUNT(*) AS pairs,
           COUNT(pair_score) AS scored,
           AVG(pair_score) AS mean_pair_score,
           stddev_samp(pair_score) AS sd
    FROM pairs
    GROUP BY responder_role, request_channel
)
SELECT responder_role, channel, pairs, mean_pair_score,
       CASE WHEN scored >= 2 THEN greatest(mean_pair_score - 1.96 * sd / sqrt(scored), 0.0) END AS score_low,
       CASE WHEN scored >= 2 THEN least(mean_pair_score + 1.96 * sd / sqrt(scored), 100.0) END AS score_high
FROM cells
