-- Pair scores aggregated by responder role (bot vs human), responder, request channel and
-- category, over the whole period. The shares say how many pairs had each score component
-- (promptness is always there); hotspot_share: pairs whose request was strongly negative.
WITH dims AS (
    SELECT 'responder_role' AS dimension, responder_role AS value, * FROM pairs
    UNION ALL
    SELECT 'responder' AS dimension, responder_id AS value, * FROM pairs
    UNION ALL
    SELECT 'channel' AS dimension, request_channel AS value, * FROM pairs
    UNION ALL
    SELECT 'category' AS dimension, COALESCE(category, '') AS value, * FROM pairs
)
SELECT dimension, value,
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
FROM dims
GROUP BY dimension, value
