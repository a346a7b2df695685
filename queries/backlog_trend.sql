-- metric: The backlog at the end of each week
-- order: week
--
-- Backlog at the end of each ISO week of the period (DESIGN 4.5), for trend lines. The snapshot
-- is the week's end, or params.as_of for a week not over by then. Open: opened by the snapshot and
-- neither resolved nor closed by then (as in backlog.sql). older_than_7d: open for more than 7
-- days; stale: last updated more than 7 days before the snapshot.
WITH p AS (SELECT * FROM params),
snapshots AS (
    SELECT w.week, CASE WHEN w.week_end < p.as_of THEN w.week_end ELSE p.as_of END AS snapshot_at
    FROM weeks w CROSS JOIN p
)
SELECT s.week, s.snapshot_at,
       COUNT(t.ticket_id) AS open_tickets,
       COALESCE(SUM(CASE WHEN t.opened_at < s.snapshot_at - INTERVAL '7 days' THEN 1 ELSE 0 END), 0) AS older_than_7d,
       COALESCE(SUM(CASE WHEN t.updated_at < s.snapshot_at - INTERVAL '7 days' THEN 1 ELSE 0 END), 0) AS stale_tickets
FROM snapshots s
LEFT JOIN tickets t
  ON t.opened_at <= s.snapshot_at
 AND (t.resolved_at IS NULL OR t.resolved_at > s.snapshot_at)
 AND (t.closed_at IS NULL OR t.closed_at > s.snapshot_at)
GROUP BY s.week, s.snapshot_at
