-- metric: Each ticket's answered requests with their response (the pairing step of pairs)
-- order: ticket_id, run
--
-- The pairing step of `pairs` (DESIGN 4.2). Public requester, agent and bot interactions of a
-- ticket are ordered by (at, seq, id); pos is the place in that order, from 1. A request is a
-- run of consecutive requester interactions (run: its number in the ticket, from 1); its
-- response is the interaction right after the run (an agent's or the bot's). One row per
-- answered request. request_at is the run's first message (the wait starts there);
-- request_channel its last message's channel; request_sentiment the run's mean;
-- followup_sentiment: the requester's next request (the next run, answered or not), if any;
-- is_last_pair: the ticket's last answered request.
-- In one process deskpulse computes this view in one sorted pass over each ticket's messages
-- (src/engine/pairing.rs) rather than with these window functions, which DataFusion runs
-- slowly over a million small partitions; a test checks that both give the same rows. This SQL
-- is the definition, and what a cluster runs.
WITH pub AS (
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
)
SELECT q.*, r.interaction_id AS response_id, r.at AS response_at, r.actor_role AS responder_role,
       r.actor_id AS responder_id, r.channel AS response_channel,
       ROW_NUMBER() OVER (PARTITION BY q.ticket_id ORDER BY q.run DESC) = 1 AS is_last_pair
FROM with_followup q
JOIN pub r ON r.ticket_id = q.ticket_id AND r.pos = q.last_pos + 1
