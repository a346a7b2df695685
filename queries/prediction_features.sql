-- metric: One row per resolved ticket: what was known at its resolution, and its rating
-- depends: ticket_facts, ticket_ratings
-- order: ticket_id
-- per_ticket: yes (computed in passes of tickets on a large lake)
--
-- The inputs of `deskpulse predict` (docs/prediction.md): every ticket resolved by params.as_of,
-- with what was known when it was resolved (interactions after resolved_at are not looked at).
-- frt_hours, ttr_hours: first response and resolution in business hours (ticket_facts; NULL when
--   unknown or left out as a contradiction).
-- reopens, reassignments: the export's counts (0 when it has none).
-- agent_hops: distinct agents who replied publicly, less one.
-- channel_switches: distinct channels of the requester's messages, less one.
-- requester_messages: the requester's interactions.
-- bot_involved: a bot took part or resolved the ticket.
-- sentiment_first, sentiment_last, sentiment_min: VADER compound of the requester's scored
--   messages (NULL: none scored); sentiment_trend = last - first.
-- rated_at, satisfied: the ticket's rating (ticket_ratings) when given by as_of;
--   satisfied = score_5 >= params.satisfied. NULL: not rated (by then).
WITH p AS (SELECT * FROM params),
resolved AS (
    SELECT f.*
    FROM ticket_facts f, p
    WHERE f.resolved_at IS NOT NULL AND f.resolved_at <= p.as_of
),
said AS (
    SELECT i.ticket_id, i.at, i.seq, i.interaction_id, i.actor_role, i.actor_id, i.channel,
           i.is_public, i.sentiment
    FROM interactions i
    JOIN resolved r ON r.ticket_id = i.ticket_id AND i.at <= r.resolved_at
),
talk AS (
    SELECT ticket_id,
           SUM(CASE WHEN actor_role = 'requester' THEN 1 ELSE 0 END) AS requester_messages,
           MAX(CASE WHEN actor_role = 'bot' THEN 1 ELSE 0 END) = 1 AS bot_took_part
    FROM said
    GROUP BY ticket_id
),
-- The requester's channels and the public agents, counted as distinct rows first: two
-- COUNT(DISTINCT ...) per ticket keep a hash set per ticket and group (20 GB at a million
-- tickets).
spread AS (
    SELECT ticket_id,
           SUM(CASE WHEN kind = 'channel' THEN 1 ELSE 0 END) AS requester_channels,
           SUM(CASE WHEN kind = 'agent' THEN 1 ELSE 0 END) AS agents
    FROM (
        SELECT DISTINCT ticket_id,
               CASE WHEN actor_role = 'requester' THEN 'channel' ELSE 'agent' END AS kind,
               CASE WHEN actor_role = 'requester' THEN channel ELSE actor_id END AS value
        FROM said
        WHERE (actor_role = 'requester' AND channel IS NOT NULL)
           OR (actor_role = 'agent' AND is_public AND actor_id IS NOT NULL)
    ) d
    GROUP BY ticket_id
),
rated AS (
    SELECT g.ticket_id, g.rated_at, g.score_5 >= p.satisfied AS satisfied
    FROM ticket_ratings g, p
    WHERE g.rated_at <= p.as_of
),
mood AS (
    SELECT ticket_id,
           first_value(sentiment ORDER BY at, seq NULLS FIRST, interaction_id) AS sentiment_first,
           last_value(sentiment ORDER BY at, seq NULLS FIRST, interaction_id) AS sentiment_last,
           MIN(sentiment) AS sentiment_min
    FROM said
    WHERE actor_role = 'requester' AND sentiment IS NOT NULL
    GROUP BY ticket_id
)
SELECT r.ticket_id, r.channel, r.category, r.priority, r.resolved_at,
       r.frt_business_seconds / 3600.0 AS frt_hours,
       r.ttr_business_seconds / 3600.0 AS ttr_hours,
       COALESCE(r.reopen_count, 0) AS reopens,
       COALESCE(r.reassignment_count, 0) AS reassignments,
       GREATEST(COALESCE(s.agents, 0) - 1, 0) AS agent_hops,
       GREATEST(COALESCE(s.requester_channels, 0) - 1, 0) AS channel_switches,
       COALESCE(t.requester_messages, 0) AS requester_messages,
       COALESCE(t.bot_took_part, false) OR COALESCE(r.resolution_path = 'bot', false) AS bot_involved,
       m.sentiment_first, m.sentiment_last, m.sentiment_min,
       m.sentiment_last - m.sentiment_first AS sentiment_trend,
       g.rated_at, g.satisfied
FROM resolved r
LEFT JOIN talk t ON t.ticket_id = r.ticket_id
LEFT JOIN spread s ON s.ticket_id = r.ticket_id
LEFT JOIN mood m ON m.ticket_id = r.ticket_id
LEFT JOIN rated g ON g.ticket_id = r.ticket_id
