-- metric: Each rated ticket's latest rating (what "the ticket's rating" means)
-- order: ticket_id
--
-- Each rated ticket's latest rating (by rated_at, ties: the higher rating_id): what "the
-- ticket's rating" means wherever a metric needs one.
SELECT ticket_id, rating_id, rated_at, score_5 FROM (
    SELECT ticket_id, rating_id, rated_at, score_5,
           ROW_NUMBER() OVER (PARTITION BY ticket_id ORDER BY rated_at DESC, rating_id DESC) AS rn
    FROM ratings)
WHERE rn = 1
