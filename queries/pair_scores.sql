-- metric: Every request-response pair of the lake with its score and its components
-- depends: ticket_ratings, request_runs
-- order: ticket_id, request_at
-- per_ticket: yes (computed in passes of tickets on a large lake)
--
-- Request-response pairs (DESIGN 4.2), one row per pair of the lake, whatever the period: the
-- answered requests of `request_runs` (a request is a run of consecutive requester
-- interactions, its response the agent's or bot's interaction right after it) with their score.
-- `pairs` is the pairs of a period. They read no parameter of the run (only the configuration's
-- reply targets and calendar), so a local lake keeps them for every later process (`_derived/`).
-- rating: a rating of the response itself (its interaction_id), else, for the ticket's last
--   pair, the ticket's latest rating.
-- pair_score (0-100): weighted mean of the available components, weights renormalised:
--   rating (score_5 - 1) / 4, weight 0.5; mood (followup_sentiment + 1) / 2, weight 0.3;
--   promptness, weight 0.2: 1 within the request channel's target latency (business seconds
--   for business targets), falling linearly to 0 at four times the target.
-- hotspot: request_sentiment <= -0.5.
-- (DataFusion builds a hash join's left side and knows no sizes here, so each join puts the
-- smaller side left: the one row of the 'other' target, probed against every pair, would cut
-- them into batches of one; the pairs as the build side of their joins to tickets and ticket
-- ratings cost twice the time of those tables as build sides, hence RIGHT JOINs.)
WITH p AS (
    SELECT target_seconds AS other_seconds, business AS other_business
    FROM targets WHERE channel = 'other'
),
reply_rating AS (
    SELECT interaction_id, first_value(score_5 ORDER BY rated_at DESC, rating_id DESC) AS score_5
    FROM ratings WHERE interaction_id IS NOT NULL
    GROUP BY interaction_id
),
runs AS (
    SELECT a.*, p.other_seconds, p.other_business
    FROM p CROSS JOIN request_runs a
),
-- Interactions whose ticket is not in the lake still pair (their category is NULL).
categorised AS (
    SELECT a.*, t.category FROM tickets t RIGHT JOIN runs a ON t.ticket_id = a.ticket_id
),
rated AS (
    SELECT a.*, tr.score_5 AS ticket_score
    FROM ticket_ratings tr RIGHT JOIN categorised a ON tr.ticket_id = a.ticket_id
),
scored AS (
    SELECT a.*,
           (CAST(a.response_at AS BIGINT) - CAST(a.request_at AS BIGINT)) / 1e6 AS latency_seconds,
           business_seconds(a.request_at, a.response_at) AS latency_business_seconds,
           COALESCE(rr.score_5, CASE WHEN a.is_last_pair THEN a.ticket_score END) AS rating,
           COALESCE(g.target_seconds, a.other_seconds) AS target_seconds,
           COALESCE(g.business, a.other_business) AS target_business
    FROM rated a
    LEFT JOIN reply_rating rr ON rr.interaction_id = a.response_id
    LEFT JOIN targets g ON g.channel = a.request_channel
),
components AS (
    SELECT s.*,
           (s.rating - 1.0) / 4.0 AS rating_component,
           (s.followup_sentiment + 1.0) / 2.0 AS mood_component,
           CASE WHEN (CASE WHEN s.target_business THEN s.latency_business_seconds ELSE s.latency_seconds END) <= s.target_seconds
                THEN 1.0
                ELSE GREATEST(0.0, 1.0 - ((CASE WHEN s.target_business THEN s.latency_business_seconds ELSE s.latency_seconds END) - s.target_seconds) / (3.0 * s.target_seconds))
           END AS promptness_component
    FROM scored s
)
SELECT c.ticket_id, c.category, c.run AS pair_number,
       c.request_at, c.request_messages, c.request_channel, c.request_sentiment,
       c.response_id, c.response_at, c.responder_role, c.responder_id, c.response_channel,
       c.request_channel <> c.response_channel AS channel_switch,
       c.latency_seconds, c.latency_business_seconds,
       c.followup_sentiment,
       c.followup_sentiment - c.request_sentiment AS sentiment_delta,
       c.rating,
       c.rating_component, c.mood_component, c.promptness_component,
       100.0 * (0.5 * COALESCE(c.rating_component, 0.0) + 0.3 * COALESCE(c.mood_component, 0.0) + 0.2 * c.promptness_component)
             / (CASE WHEN c.rating_component IS NULL THEN 0.0 ELSE 0.5 END
                + CASE WHEN c.mood_component IS NULL THEN 0.0 ELSE 0.3 END + 0.2) AS pair_score,
       COALESCE(c.request_sentiment <= -0.5, false) AS hotspot
FROM components c
