-- metric: Request-response pairs with their score and its components
-- depends: ticket_ratings
-- order: ticket_id, request_at
-- per_ticket: yes (computed in passes of tickets on a large lake)
--
-- Request-response pairs (DESIGN 4.2), one row per pair whose request falls in the period.
-- Public requester, agent and bot interactions of a ticket are ordered by (at, seq, id). A
-- request is a run of consecutive requester interactions; its response is the interaction right
-- after the run (an agent's or the bot's). request_at is the run's first message (the wait
-- starts there); request_channel its last message's channel; request_sentiment the run's mean.
-- followup_sentiment: the requester's next request (the next run), if any.
-- rating: a rating of the response itself (its interaction_id), else, for the ticket's last
--   pair, the ticket's latest rating.
-- pair_score (0-100): weighted mean of the available components, weights renormalised:
--   rating (score_5 - 1) / 4, weight 0.5; mood (followup_sentiment + 1) / 2, weight 0.3;
--   promptness, weight 0.2: 1 within the request channel's target latency (business seconds
--   for business targets), falling linearly to 0 at four times the target.
-- hotspot: request_sentiment <= -0.5.
WITH p AS (SELECT * FROM params),
pub AS (
    SELECT ticket_id, interaction_id, at, actor_role, actor_id, channel, sentiment,
           ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY at, seq NULLS FIRST, interaction_id) AS pos
    FROM interactions
    WHERE is_public AND actor_role IN ('requester', 'agent', 'bot')
),
marked AS (
    SELECT *,
           CASE WHEN actor_role = 'requester'
                 AND COALESCE(LAG(actor_role) OVER (PARTITION BY ticket_id ORDER BY pos), '') <> 'requester'
                THEN 1 ELSE 0 END AS run_start
    FROM pub
),
runs AS (
    SELECT *,
           SUM(run_start) OVER (PARTITION BY ticket_id ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
    FROM marked
),
requests AS (
    SELECT ticket_id, run,
           MIN(at) AS request_at,
           MAX(pos) AS last_pos,
           COUNT(*) AS request_messages,
           AVG(sentiment) AS request_sentiment,
           last_value(channel ORDER BY pos) AS request_channel
    FROM runs
    WHERE actor_role = 'requester'
    GROUP BY ticket_id, run
),
with_followup AS (
    SELECT *, LEAD(request_sentiment) OVER (PARTITION BY ticket_id ORDER BY run) AS followup_sentiment
    FROM requests
),
answered AS (
    SELECT q.*, r.interaction_id AS response_id, r.at AS response_at, r.actor_role AS responder_role,
           r.actor_id AS responder_id, r.channel AS response_channel,
           ROW_NUMBER() OVER (PARTITION BY q.ticket_id ORDER BY q.run DESC) = 1 AS is_last_pair
    FROM with_followup q
    JOIN pub r ON r.ticket_id = q.ticket_id AND r.pos = q.last_pos + 1
),
reply_rating AS (
    SELECT interaction_id, score_5 FROM (
        SELECT interaction_id, score_5,
               ROW_NUMBER() OVER (PARTITION BY interaction_id ORDER BY rated_at DESC, rating_id DESC) AS rn
        FROM ratings WHERE interaction_id IS NOT NULL)
    WHERE rn = 1
),
scored AS (
    SELECT a.*,
           t.category,
           (CAST(a.response_at AS BIGINT) - CAST(a.request_at AS BIGINT)) / 1e6 AS latency_seconds,
           business_seconds(a.request_at, a.response_at) AS latency_business_seconds,
           COALESCE(rr.score_5, CASE WHEN a.is_last_pair THEN tr.score_5 END) AS rating,
           COALESCE(g.target_seconds, o.target_seconds) AS target_seconds,
           COALESCE(g.business, o.business) AS target_business
    FROM answered a
    -- Interactions whose ticket is not in the lake still pair (their category is NULL).
    LEFT JOIN tickets t ON t.ticket_id = a.ticket_id
    LEFT JOIN reply_rating rr ON rr.interaction_id = a.response_id
    LEFT JOIN ticket_ratings tr ON tr.ticket_id = a.ticket_id
    LEFT JOIN targets g ON g.channel = a.request_channel
    CROSS JOIN (SELECT target_seconds, business FROM targets WHERE channel = 'other') o
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
SELECT CASE WHEN p.by_week THEN iso_week(c.request_at) ELSE p.period_label END AS period,
       c.ticket_id, c.category, c.run AS pair_number,
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
CROSS JOIN p
WHERE c.request_at >= p.period_start AND c.request_at < p.period_end
