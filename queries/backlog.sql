-- metric: Open tickets at --as-of by age, and how many went stale
-- order: bucket_order
--
-- Backlog aging (DESIGN 4.5) at params.as_of: tickets opened by then and neither resolved nor
-- closed by then, by age (0-1, 1-3, 3-7, 7-30, >30 days), and how many were not updated for
-- more than 7 days (known only when the ticket's last update is not after as_of).
WITH p AS (SELECT * FROM params),
open_tickets AS (
    SELECT (CAST(p.as_of AS BIGINT) - CAST(t.opened_at AS BIGINT)) / 86400e6 AS age_days,
           t.updated_at <= p.as_of AND t.updated_at < p.as_of - INTERVAL '7 days' AS stale
    FROM p CROSS JOIN tickets t
    WHERE t.opened_at <= p.as_of
      AND (t.resolved_at IS NULL OR t.resolved_at > p.as_of)
      AND (t.closed_at IS NULL OR t.closed_at > p.as_of)
),
bucketed AS (
    SELECT CASE WHEN age_days < 1 THEN 1 WHEN age_days < 3 THEN 2 WHEN age_days < 7 THEN 3
                WHEN age_days < 30 THEN 4 ELSE 5 END AS bucket_order,
           stale
    FROM open_tickets
),
buckets AS (
    SELECT * FROM (VALUES (1, '0-1d'), (2, '1-3d'), (3, '3-7d'), (4, '7-30d'), (5, '>30d')) AS b(bucket_order, bucket)
)
SELECT b.bucket_order, b.bucket,
       COUNT(x.bucket_order) AS open_tickets,
       SUM(CASE WHEN x.stale THEN 1 ELSE 0 END) AS stale_tickets
FROM buckets b
LEFT JOIN bucketed x ON x.bucket_order = b.bucket_order
GROUP BY b.bucket_order, b.bucket
