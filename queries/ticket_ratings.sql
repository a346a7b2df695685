-- metric: Each rated ticket's latest rating (what "the ticket's rating" means)
-- order: ticket_id
--
-- Each rated ticket's latest rating (by rated_at, ties: the higher rating_id): what "the
-- ticket's rating" means wherever a metric needs one.
-- (An aggregation keeps each ticket's best row as it reads; a ROW_NUMBER window would sort every
-- rating by ticket first.)
SELECT ticket_id,
       first_value(rating_id ORDER BY rated_at DESC, rating_id DESC) AS rating_id,
       first_value(rated_at ORDER BY rated_at DESC, rating_id DESC) AS rated_at,
       first_value(score_5 ORDER BY rated_at DESC, rating_id DESC) AS score_5
FROM ratings
GROUP BY ticket_id
