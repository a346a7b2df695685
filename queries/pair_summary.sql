-- metric: Pair scores by responder role, responder, channel and category
-- depends: pairs
-- order: dimension, value
--
-- Pair scores aggregated by responder role (bot vs human), responder, request channel and
-- category, over the whole period (one pass over the pairs, with grouping sets). The shares say
-- how many pairs had each score component (promptness is always there); hotspot_share: pairs
-- whose request was strongly negative.
WITH grouped AS (
    SELECT CASE WHEN grouping(responder_role) = 0 THEN 'responder_role'
                WHEN grouping(responder_id) = 0 THEN 'responder'
                WHEN grouping(request_channel) = 0 THEN 'channel'
                ELSE 'category' END AS dimension,
           COALESCE(responder_role, responder_id, request_channel, category, '') AS value,
           COUNT(*) AS pairs,
           AVG(pair_score) AS mean_pair_score,
           AVG(rating) AS mean_rating,
           AVG(CASE WHEN rating_component IS NOT NULL THEN 1.0 ELSE 0.0 END) AS share_with_rating,
           AVG(CASE WHEN mood_component IS NOT NULL THEN 1.0 ELSE 0.0 END) AS share_with_mood,
           AVG(CASE WHEN promptness_component IS NOT NULL THEN 1.0 ELSE 0.0 END) AS share_with_promptness,
           AVG(request_sentiment) AS mean_request_sentiment,
           AVG(followup_sentiment) AS mean_followup_sentiment,
           AVG(sentiment_delta) AS mean_sentiment_delta,
           COUNT(sentiment_delta) AS pairs_with_followup,
           SUM(CASE WHEN hotspot THEN 1 ELSE 0 END) AS hotspots,
           AVG(CASE WHEN hotspot THEN 1.0 ELSE 0.0 END) AS hotspot_share,
           median(latency_seconds) AS median_latency_seconds
    FROM pairs
    GROUP BY GROUPING SETS ((responder_role), (responder_id), (request_channel), (category))
)
SELECT * FROM grouped
