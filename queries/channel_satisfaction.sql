-- metric: Satisfaction per channel and week: CSAT with its interval, response rate, FRT, TTR, switching
-- depends: ticket_facts
-- order: period, channel
--
-- Per-channel satisfaction (DESIGN 4.1), per channel (the ticket's) and ISO week, or one period
-- for --from/--to. Ratings count in the period they were given; ticket figures (resolved,
-- response rate, channel switching, first response and resolution times) in the period the
-- ticket was resolved.
-- csat: satisfied (score_5 >= params.satisfied) / ratings, with a 95% Wilson interval.
-- response_rate: offered tickets that got a rating / offered tickets, where offered means the
--   export says a survey was offered, or says nothing (then every resolved ticket counts).
-- negative_comment_share: comments with VADER compound <= -0.05 / comments.
-- in_channel_rating_share: ratings given on the channel of the ticket's last interaction /
--   ratings whose channel is known.
-- channel_switch_share: resolved tickets whose requester used more than one channel / resolved
--   tickets with a requester interaction.
-- csat_adjusted: direct standardisation over category: the channel's CSAT per category, weighted
--   by the period's overall category mix of ratings (over the categories the channel has).
-- ratings_without_ticket: ratings whose ticket is not in the lake. They count in every rating
--   figure, placed on the channel the rating was given on (else 'other'); nothing about their
--   ticket (category, last channel) is known, so they have no category cell in csat_adjusted.
-- frt_left_out / ttr_left_out: resolved tickets whose first response / resolution lies before
--   their opening (a finding), left out of the medians only.
-- A rate with nothing to divide by is NULL, never 0.
WITH p AS (SELECT * FROM params),
rated AS (
    SELECT CASE WHEN p.by_week THEN iso_week(r.rated_at) ELSE p.period_label END AS period,
           COALESCE(f.channel, r.channel, 'other') AS channel, COALESCE(f.category, '') AS category,
           r.ticket_id, r.score_5, r.comment,
           r.sentiment, r.channel AS rating_channel, f.last_channel,
           CASE WHEN f.ticket_id IS NULL THEN 1 ELSE 0 END AS without_ticket,
           CASE WHEN r.score_5 >= p.satisfied THEN 1 ELSE 0 END AS sat
    FROM p
    CROSS JOIN ratings r
    LEFT JOIN ticket_facts f ON f.ticket_id = r.ticket_id
    WHERE r.rated_at >= p.period_start AND r.rated_at < p.period_end
),
resolved AS (
    SELECT CASE WHEN p.by_week THEN iso_week(f.resolved_at) ELSE p.period_label END AS period,
           f.*
    FROM p
    CROSS JOIN ticket_facts f
    WHERE f.resolved_at >= p.period_start AND f.resolved_at < p.period_end
),
rating_stats AS (
    SELECT period, channel,
           COUNT(*) AS ratings,
           COUNT(DISTINCT ticket_id) AS rated_tickets,
           SUM(sat) AS satisfied,
           SUM(without_ticket) AS without_ticket,
           AVG(score_5) AS mean_score,
           AVG(CASE WHEN comment IS NOT NULL THEN sentiment END) AS comment_sentiment,
           SUM(CASE WHEN comment IS NOT NULL AND sentiment IS NOT NULL THEN 1 ELSE 0 END) AS comments,
           SUM(CASE WHEN comment IS NOT NULL AND sentiment <= -0.05 THEN 1 ELSE 0 END) AS negative_comments,
           SUM(CASE WHEN rating_channel IS NOT NULL AND last_channel IS NOT NULL THEN 1 ELSE 0 END) AS located_ratings,
           SUM(CASE WHEN rating_channel = last_channel THEN 1 ELSE 0 END) AS in_channel_ratings
    FROM rated
    GROUP BY period, channel
),
ticket_stats AS (
    SELECT period, channel,
           COUNT(*) AS resolved,
           SUM(CASE WHEN survey_offered IS NULL OR survey_offered THEN 1 ELSE 0 END) AS offered,
           SUM(CASE WHEN (survey_offered IS NULL OR survey_offered) AND has_rating THEN 1 ELSE 0 END) AS responded,
           SUM(CASE WHEN requester_channels IS NOT NULL THEN 1 ELSE 0 END) AS with_requester,
           SUM(CASE WHEN requester_channels > 1 THEN 1 ELSE 0 END) AS switched,
           SUM(CASE WHEN frt_left_out THEN 1 ELSE 0 END) AS frt_left_out,
           SUM(CASE WHEN ttr_left_out THEN 1 ELSE 0 END) AS ttr_left_out,
           median(frt_seconds) AS median_frt_seconds,
           median(frt_business_seconds) AS median_frt_business_seconds,
           median(ttr_seconds) AS median_ttr_seconds,
           median(ttr_business_seconds) AS median_ttr_business_seconds
    FROM resolved
    GROUP BY period, channel
),
mix AS (
    SELECT period, category, COUNT(*) AS n FROM rated GROUP BY period, category
),
cell AS (
    SELECT period, channel, category, AVG(CAST(sat AS DOUBLE)) AS csat
    FROM rated
    GROUP BY period, channel, category
),
adjusted AS (
    SELECT c.period, c.channel, SUM(c.csat * m.n) / SUM(m.n) AS csat_adjusted
    FROM cell c
    JOIN mix m ON m.period = c.period AND m.category = c.category
    GROUP BY c.period, c.channel
),
keys AS (
    SELECT period, channel FROM rating_stats
    UNION
    SELECT period, channel FROM ticket_stats
)
SELECT k.period, k.channel,
       COALESCE(r.ratings, 0) AS ratings,
       COALESCE(r.rated_tickets, 0) AS rated_tickets,
       COALESCE(r.satisfied, 0) AS satisfied,
       CAST(r.satisfied AS DOUBLE) / NULLIF(r.ratings, 0) AS csat,
       wilson_low(r.satisfied, r.ratings) AS csat_low,
       wilson_high(r.satisfied, r.ratings) AS csat_high,
       a.csat_adjusted,
       r.mean_score,
       r.comment_sentiment,
       COALESCE(r.comments, 0) AS comments,
       CAST(r.negative_comments AS DOUBLE) / NULLIF(r.comments, 0) AS negative_comment_share,
       wilson_low(r.negative_comments, r.comments) AS negative_comment_low,
       wilson_high(r.negative_comments, r.comments) AS negative_comment_high,
       COALESCE(r.located_ratings, 0) AS located_ratings,
       CAST(r.in_channel_ratings AS DOUBLE) / NULLIF(r.located_ratings, 0) AS in_channel_rating_share,
       wilson_low(r.in_channel_ratings, r.located_ratings) AS in_channel_low,
       wilson_high(r.in_channel_ratings, r.located_ratings) AS in_channel_high,
       COALESCE(t.resolved, 0) AS resolved,
       COALESCE(t.offered, 0) AS offered,
       COALESCE(t.responded, 0) AS responded,
       CAST(t.responded AS DOUBLE) / NULLIF(t.offered, 0) AS response_rate,
       wilson_low(t.responded, t.offered) AS response_rate_low,
       wilson_high(t.responded, t.offered) AS response_rate_high,
       COALESCE(t.with_requester, 0) AS with_requester,
       CAST(t.switched AS DOUBLE) / NULLIF(t.with_requester, 0) AS channel_switch_share,
       wilson_low(t.switched, t.with_requester) AS channel_switch_low,
       wilson_high(t.switched, t.with_requester) AS channel_switch_high,
       t.median_frt_seconds,
       t.median_frt_business_seconds,
       t.median_ttr_seconds,
       t.median_ttr_business_seconds,
       COALESCE(r.without_ticket, 0) AS ratings_without_ticket,
       COALESCE(t.frt_left_out, 0) AS frt_left_out,
       COALESCE(t.ttr_left_out, 0) AS ttr_left_out
FROM keys k
LEFT JOIN rating_stats r ON r.period = k.period AND r.channel = k.channel
LEFT JOIN ticket_stats t ON t.period = k.period AND t.channel = k.channel
LEFT JOIN adjusted a ON a.period = k.period AND a.channel = k.channel
