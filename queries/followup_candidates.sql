-- metric: Follow-up survey candidates before throttling
-- order: cohort, requester_id, ticket_id
--
-- Follow-up survey candidates (DESIGN 4.3), before throttling, for the period:
-- low_rating: the requester of every rating with score_5 <= 2 given in the period (the rating's
--   own requester_id, else its ticket's; a rating whose ticket is not in the lake still counts).
-- same_issue: every requester of a ticket resolved in the period whose issue group (issue_key,
--   else category / subcategory) has at least params.min_rated ratings of its tickets (given at
--   any time) and a CSAT whose upper 95% Wilson bound is below params.csat_threshold.
-- channel: where to reach the requester: the channel of their latest interaction, else of their
--   latest ticket.
WITH p AS (SELECT * FROM params),
groups AS (
    SELECT ticket_id, requester_id, resolved_at,
           COALESCE(issue_key, COALESCE(category, '') || ' / ' || COALESCE(subcategory, '')) AS issue
    FROM tickets
),
issue_csat AS (
    SELECT g.issue,
           COUNT(*) AS rated,
           SUM(CASE WHEN r.score_5 >= p.satisfied THEN 1 ELSE 0 END) AS satisfied
    FROM p CROSS JOIN ratings r JOIN groups g ON g.ticket_id = r.ticket_id
    GROUP BY g.issue
),
-- The period's bounds ride along with the weak issues, so that `same` is one join on the issue:
-- a second CROSS JOIN with params there made Ballista 55 count every same_issue row once per
-- partition of the UNION below (a distributed-planning bug; tests/it/cluster.rs).
weak_issues AS (
    SELECT i.issue, i.rated, i.satisfied, wilson_high(i.satisfied, i.rated) AS csat_high,
           p.period_start, p.period_end
    FROM issue_csat i CROSS JOIN p
    WHERE i.rated >= p.min_rated AND wilson_high(i.satisfied, i.rated) < p.csat_threshold
),
-- The cohort labels are computed from a column rather than written as literals: DataFusion 55
-- otherwise treats a sort on a UNION of per-branch constants as already done (a planner bug).
low AS (
    SELECT CASE WHEN r.score_5 <= 2 THEN 'low_rating' END AS cohort, r.ticket_id AS cohort_key, COALESCE(r.requester_id, t.requester_id) AS requester_id,
           r.ticket_id, r.score_5 AS rating,
           'rated ' || CAST(ROUND(r.score_5, 1) AS VARCHAR) || ' of 5' AS reason
    FROM p CROSS JOIN ratings r LEFT JOIN tickets t ON t.ticket_id = r.ticket_id
    WHERE r.score_5 <= 2 AND r.rated_at >= p.period_start AND r.rated_at < p.period_end
),
same AS (
    SELECT CASE WHEN g.issue IS NOT NULL THEN 'same_issue' END AS cohort, g.issue AS cohort_key, g.requester_id, g.ticket_id,
           CAST(NULL AS DOUBLE) AS rating,
           'issue ' || g.issue || ': CSAT ' || CAST(w.satisfied AS VARCHAR) || '/' || CAST(w.rated AS VARCHAR)
             || ', upper bound ' || CAST(ROUND(w.csat_high, 3) AS VARCHAR) AS reason
    -- (the weak issues on the build side, not every ticket of the lake)
    FROM weak_issues w JOIN groups g ON w.issue = g.issue
    WHERE g.resolved_at >= w.period_start AND g.resolved_at < w.period_end
),
candidates AS (
    SELECT * FROM low UNION ALL SELECT * FROM same
),
-- The last channel only of the candidates, a few per cent of the requesters: over every
-- requester it was a join of every interaction with every ticket and a sort of them all
-- (3.6 GiB at ten million tickets).
reached AS (
    SELECT t.requester_id, t.ticket_id
    FROM (SELECT DISTINCT requester_id FROM candidates) w
    JOIN tickets t ON t.requester_id = w.requester_id
),
-- Where a requester spoke: their interactions, and each ticket's opening channel. (Joined to
-- `reached` once: a CTE is computed again at each mention, and `reached` holds `candidates`.)
touches AS (
    SELECT ticket_id, channel, at, interaction_id FROM interactions WHERE actor_role = 'requester'
    UNION ALL
    SELECT ticket_id, channel, opened_at AS at, '' AS interaction_id FROM tickets
),
last_channel AS (
    SELECT requester_id, channel FROM (
        SELECT r.requester_id, x.channel,
               ROW_NUMBER() OVER (PARTITION BY r.requester_id ORDER BY x.at DESC, x.interaction_id DESC) AS rn
        FROM reached r JOIN touches x ON x.ticket_id = r.ticket_id)
    WHERE rn = 1
)
SELECT c.cohort, c.cohort_key, c.requester_id, c.ticket_id, c.rating, c.reason, l.channel
FROM candidates c
LEFT JOIN last_channel l ON l.requester_id = c.requester_id
WHERE c.requester_id IS NOT NULL
