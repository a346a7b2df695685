-- metric: One row per ticket: first response, resolution, durations, replies, channels
-- order: ticket_id
-- per_ticket: yes (computed in passes of tickets on a large lake)
--
-- One row per ticket: the facts several metrics share.
-- first_response: the first public agent or bot interaction, else the export's first_response_at.
-- Durations are in calendar seconds and in business seconds (the configured calendar).
-- agent_replies: public agent interactions. requester_channels: channels the requester used.
-- last_channel: the channel of the ticket's last interaction (ties: higher seq, then id).
-- A duration whose end lies before the ticket was opened (a finding: the export contradicts
-- itself) is NULL, and frt_left_out / ttr_left_out say so: the ticket stays in every count and
-- rate, only that duration is left out of medians and means.
-- (The interactions are aggregated once for the replies, the last channel and the requester's
-- channels: count_distinct_few is COUNT(DISTINCT) without a hash set per ticket, which took
-- 11 GB at a million tickets, so it sits beside the others; 0 when the requester never wrote.
-- has_rating needs only the rated ticket ids, not the latest rating.
-- last_in_order(channel, at, seq, interaction_id) is last_value(channel ORDER BY at, seq NULLS
-- FIRST, interaction_id), computed without DataFusion's per-row copies of the ordering keys.)
WITH touches AS (
    SELECT ticket_id,
           MIN(CASE WHEN is_public AND actor_role IN ('agent', 'bot') THEN at END) AS first_reply_at,
           SUM(CASE WHEN is_public AND actor_role = 'agent' THEN 1 ELSE 0 END) AS agent_replies,
           last_in_order(channel, at, seq, interaction_id) AS last_channel,
           count_distinct_few(CASE WHEN actor_role = 'requester' THEN channel END) AS requester_channels
    FROM interactions
    GROUP BY ticket_id
),
facts AS (
    SELECT t.ticket_id, t.source, t.channel, t.category, t.subcategory, t.issue_key, t.status,
           t.priority, t.requester_id, t.assignee_id, t.assignment_group, t.resolution_path,
           t.opened_at, t.resolved_at, t.closed_at, t.updated_at, t.survey_offered,
           t.reassignment_count, t.reopen_count, t.made_sla,
           COALESCE(r.first_reply_at, t.first_response_at) AS first_response_at,
           COALESCE(r.agent_replies, 0) AS agent_replies,
           NULLIF(r.requester_channels, 0) AS requester_channels,
           r.last_channel,
           d.ticket_id IS NOT NULL AS has_rating
    FROM tickets t
    LEFT JOIN touches r ON r.ticket_id = t.ticket_id
    LEFT JOIN (SELECT DISTINCT ticket_id FROM ratings) d ON d.ticket_id = t.ticket_id
)
SELECT f.*,
       CASE WHEN first_response_at >= opened_at
            THEN (CAST(first_response_at AS BIGINT) - CAST(opened_at AS BIGINT)) / 1e6 END AS frt_seconds,
       CASE WHEN first_response_at >= opened_at
            THEN business_seconds(opened_at, first_response_at) END AS frt_business_seconds,
       CASE WHEN resolved_at >= opened_at
            THEN (CAST(resolved_at AS BIGINT) - CAST(opened_at AS BIGINT)) / 1e6 END AS ttr_seconds,
       CASE WHEN resolved_at >= opened_at
            THEN business_seconds(opened_at, resolved_at) END AS ttr_business_seconds,
       COALESCE(first_response_at < opened_at, false) AS frt_left_out,
       COALESCE(resolved_at < opened_at, false) AS ttr_left_out
FROM facts f
