-- metric: Every dissatisfied rating with what its team lead needs
-- order: assignment_group, rated_at, ticket_id
--
-- Escalations (DESIGN 4.3): every dissatisfied rating (score_5 <= 2) given in the period, with
-- what the team lead of the ticket's group needs to act on it. A rating whose ticket is not in
-- the lake is escalated too, with what the rating itself says (group, agent and category empty).
WITH p AS (SELECT * FROM params)
SELECT r.rated_at, t.assignment_group, t.assignee_id AS agent, r.ticket_id, r.rating_id,
       COALESCE(r.requester_id, t.requester_id) AS requester_id, r.score_raw, r.scale, r.score_5,
       r.channel AS rating_channel, t.channel AS ticket_channel, t.category, t.issue_key, r.comment
FROM p
CROSS JOIN ratings r
LEFT JOIN tickets t ON t.ticket_id = r.ticket_id
WHERE r.score_5 <= 2 AND r.rated_at >= p.period_start AND r.rated_at < p.period_end
