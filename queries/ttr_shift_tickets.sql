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
),
-- (Each window's tickets come from an inner join on the time range, and an empty window's row
-- from an equi-join of the windows with their ticket counts: an outer join on a range is a
-- nested-loop join whose unmatched rows each cluster task would emit once, datafusion-ballista
-- issue 1055's kind of fault. A count over a window function instead would hold every ticket
-- row of a window in memory at once.)
matched AS (
    SELECT w.adoption_id, w.name, w.launched_at, w.window, w.window_start, w.window_end, w.scope,
           w.satisfied, f.ticket_id, f.category, f.resolved_at, f.ttr_seconds,
           f.ttr_business_seconds, f.ttr_left_out
    FROM windows w
    JOIN ticket_facts f
      ON CAST(f.opened_at AS BIGINT) >= w.window_start AND CAST(f.opened_at AS BIGINT) < w.window_end
),
counts AS (
    SELECT adoption_id, window, COUNT(*) AS n FROM matched GROUP BY adoption_id, window
),
rated AS (
    -- (ratings on the build side: two narrow columns, not every window's ticket rows; the
    -- threshold comes with the windows: a CROSS JOIN with params here would cut the rows into
    -- batches of one)
    SELECT m.*, r.score_5 >= m.satisfied AS is_satisfied
    FROM ticket_ratings r
    RIGHT JOIN matched m ON r.ticket_id = m.ticket_id
),
placed AS (
    SELECT adoption_id, name, launched_at, window, window_start, window_end, ticket_id, category,
           scope, resolved_at, ttr_seconds, ttr_business_seconds, ttr_left_out, is_satisfied
    FROM rated
    UNION ALL
    SELECT w.adoption_id, w.name, w.launched_at, w.window, w.window_start, w.window_end,
           NULL, NULL, w.scope, NULL, NULL, NULL, NULL, NULL
    FROM windows w
    LEFT JOIN counts c ON c.adoption_id = w.adoption_id AND c.window = w.window
    WHERE c.n IS NULL
)
SELECT f.adoption_id, f.name, f.launched_at, f.window, f.window_start, f.window_end,
       f.ticket_id, COALESCE(f.category, '(none)') AS category,
       (cardinality(f.scope) = 0 OR array_has(f.scope, f.category)) AS in_scope,
       f.resolved_at IS NOT NULL AS resolved,
       f.ttr_seconds / 3600.0 AS ttr_hours,
       f.ttr_business_seconds / 3600.0 AS ttr_business_hours,
       COALESCE(f.ttr_left_out, false) AS ttr_left_out,
       f.is_satisfied AS satisfied
FROM placed f
