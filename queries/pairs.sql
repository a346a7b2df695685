-- metric: Request-response pairs with their score and its components
-- depends: pair_scores
-- order: ticket_id, request_at
--
-- Request-response pairs (DESIGN 4.2), one row per pair whose request falls in the period, with
-- its score and components: the rows of `pair_scores` (which defines them) and the period
-- (ISO week of the request, or the --from/--to label).
SELECT CASE WHEN p.by_week THEN iso_week(s.request_at) ELSE p.period_label END AS period, s.*
FROM params p
JOIN pair_scores s ON s.request_at >= p.period_start AND s.request_at < p.period_end
