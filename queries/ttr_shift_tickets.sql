-- metric: Tickets before and after each self-service adoption
-- depends: ticket_facts, ticket_ratings
-- order: adoption_id, window, ticket_id
--
-- Tickets around each self-service adoption (DESIGN 4.4): for every adoption (the lake's, and
-- any given on the command line) the tickets opened in its before window [launch - W, launch)
-- and its after window [launch + ramp, launch + ramp + W), W and ramp from params.
-- in_scope: the ticket's category is in the adoption's scope (an empty scope means every
-- category). satisfied: the ticket's latest rating, if any, is satisfied. A window without
-- tickets still gives one row (ticket_id NULL), so that an empty window can be named.
-- ttr_left_out: resolved before opened (a finding); its TTR is NULL and it is counted apart.
WITH p AS (SELECT * FROM params),
a AS (
    SELECT adoption_id, name, launched_at, scope FROM adoptions
    UNION ALL
    SELECT adoption_id, name, launched_at, scope FROM extra_adoptions
),
windows AS (
    SELECT a.adoption_id, a.name, a.launched_at, a.scope, 'before' AS window,
           CAST(a.launched_at AS BIGINT) - p.window_micros AS window_start,
           CAST(a.launched_at AS BIGINT) AS window_end, p.satisfied
    FROM a CROSS JOIN p
    UNION ALL
    SELECT a.adoption_id, a.name, a.launched_at, a.scope, 'after' AS window,
           CAST(a.launched_at AS BIGINT) + p.ramp_micros AS window_start,
           CAST(a.launched_at AS BIGINT) + p.ramp_micros + p.window_micros AS window_end, p.satisfied
    FROM a CROSS JOIN p
)
SELECT w.adoption_id, w.name, w.launched_at, w.window, w.window_start, w.window_end,
       f.ticket_id, COALESCE(f.category, '(none)') AS category,
       (cardinality(w.scope) = 0 OR array_has(w.scope, f.category)) AS in_scope,
       f.resolved_at IS NOT NULL AS resolved,
       f.ttr_seconds / 3600.0 AS ttr_hours,
       f.ttr_business_seconds / 3600.0 AS ttr_business_hours,
       COALESCE(f.ttr_left_out, false) AS ttr_left_out,
       r.score_5 >= w.satisfied AS satisfied
FROM windows w
LEFT JOIN ticket_facts f
  ON CAST(f.opened_at AS BIGINT) >= w.window_start AND CAST(f.opened_at AS BIGINT) < w.window_end
-- (the threshold comes with the windows: a CROSS JOIN with params here would cut the rows
-- into batches of one)
LEFT JOIN ticket_ratings r ON r.ticket_id = f.ticket_id
