-- metric: Service-desk KPIs per week: volume, FRT, TTR, FCR, reopens, SLA, CSAT, bot vs human
-- depends: ticket_facts
-- order: period
--
-- Service-desk KPIs (DESIGN 4.5) per ISO week (or one --from/--to period).
-- Opened tickets and first response time count in the week a ticket was opened; everything about
-- resolution in the week it was resolved; CSAT in the week the rating was given.
-- first response: first public agent or bot interaction, else first_response_at.
-- fcr (params.fcr): one_touch = resolved with at most one public agent reply and no reopen;
--   no_reassignment = resolved with no reassignment and no reopen (ServiceNow's definition).
-- response_rate: resolved tickets offered a survey (or whose export does not say) that got a
--   rating / those offered, as in channel_satisfaction.
-- sla: made_sla true / made_sla known. bot vs human: ratings of tickets resolved by the bot
--   versus by an agent.
-- ratings_without_ticket: ratings whose ticket is not in the lake: counted in ratings and csat
--   (neither bot nor human). frt_left_out / ttr_left_out: tickets whose first response /
--   resolution lies before their opening (a finding), left out of the FRT / TTR figures only.
-- texts: interaction bodies and rating comments of the period; texts_scored have a sentiment;
--   texts_other_language were detected in a language VADER does not read (sentiment NULL);
--   texts_not_analysed have neither language nor sentiment (ingested with --no-sentiment).
--   A text without letters has no language and is scored, so it is not among these.
WITH p AS (SELECT * FROM params),
opened AS (
    SELECT CASE WHEN p.by_week THEN iso_week(f.opened_at) ELSE p.period_label END AS period,
           COUNT(*) AS opened,
           median(f.frt_seconds) AS median_frt_seconds,
           AVG(f.frt_seconds) AS mean_frt_seconds,
           median(f.frt_business_seconds) AS median_frt_business_seconds,
           SUM(CASE WHEN f.frt_left_out THEN 1 ELSE 0 END) AS frt_left_out
    FROM p CROSS JOIN ticket_facts f
    WHERE f.opened_at >= p.period_start AND f.opened_at < p.period_end
    GROUP BY 1
),
resolved AS (
    SELECT CASE WHEN p.by_week THEN iso_week(f.resolved_at) ELSE p.period_label END AS period,
           COUNT(*) AS resolved,
           median(f.ttr_seconds) AS median_ttr_seconds,
           AVG(f.ttr_seconds) AS mean_ttr_seconds,
           median(f.ttr_business_seconds) AS median_ttr_business_seconds,
           SUM(CASE WHEN f.ttr_left_out THEN 1 ELSE 0 END) AS ttr_left_out,
           SUM(CASE WHEN COALESCE(f.reopen_count, 0) = 0
                     AND CASE WHEN p.fcr = 'no_reassignment' THEN COALESCE(f.reassignment_count, 0) = 0
                              ELSE f.agent_replies <= 1 END
                    THEN 1 ELSE 0 END) AS fcr_tickets,
           SUM(CASE WHEN f.reopen_count > 0 THEN 1 ELSE 0 END) AS reopened,
           AVG(CAST(f.reassignment_count AS DOUBLE)) AS mean_reassignments,
           SUM(CASE WHEN f.made_sla THEN 1 ELSE 0 END) AS sla_met,
           SUM(CASE WHEN f.made_sla IS NOT NULL THEN 1 ELSE 0 END) AS sla_known,
           SUM(CASE WHEN f.survey_offered IS NULL OR f.survey_offered THEN 1 ELSE 0 END) AS offered,
           SUM(CASE WHEN (f.survey_offered IS NULL OR f.survey_offered) AND f.has_rating THEN 1 ELSE 0 END) AS responded
    FROM p CROSS JOIN ticket_facts f
    WHERE f.resolved_at >= p.period_start AND f.resolved_at < p.period_end
    GROUP BY 1
),
rated AS (
    SELECT CASE WHEN p.by_week THEN iso_week(r.rated_at) ELSE p.period_label END AS period,
           COUNT(*) AS ratings,
           SUM(CASE WHEN r.score_5 >= p.satisfied THEN 1 ELSE 0 END) AS satisfied,
           SUM(CASE WHEN t.resolution_path = 'bot' THEN 1 ELSE 0 END) AS bot_ratings,
           SUM(CASE WHEN t.resolution_path = 'bot' AND r.score_5 >= p.satisfied THEN 1 ELSE 0 END) AS bot_satisfied,
           SUM(CASE WHEN t.resolution_path = 'agent' THEN 1 ELSE 0 END) AS human_ratings,
           SUM(CASE WHEN t.resolution_path = 'agent' AND r.score_5 >= p.satisfied THEN 1 ELSE 0 END) AS human_satisfied,
           SUM(CASE WHEN t.ticket_id IS NULL THEN 1 ELSE 0 END) AS without_ticket
    FROM p CROSS JOIN ratings r LEFT JOIN tickets t ON t.ticket_id = r.ticket_id
    WHERE r.rated_at >= p.period_start AND r.rated_at < p.period_end
    GROUP BY 1
),
texts AS (
    SELECT period,
           COUNT(*) AS texts,
           SUM(CASE WHEN sentiment IS NOT NULL THEN 1 ELSE 0 END) AS texts_scored,
           SUM(CASE WHEN sentiment IS NULL AND lang IS NOT NULL THEN 1 ELSE 0 END) AS texts_other_language,
           SUM(CASE WHEN sentiment IS NULL AND lang IS NULL THEN 1 ELSE 0 END) AS texts_not_analysed
    FROM (SELECT CASE WHEN p.by_week THEN iso_week(i.at) ELSE p.period_label END AS period, i.lang, i.sentiment
          FROM p CROSS JOIN interactions i
          WHERE i.body IS NOT NULL AND i.at >= p.period_start AND i.at < p.period_end
          UNION ALL
          SELECT CASE WHEN p.by_week THEN iso_week(r.rated_at) ELSE p.period_label END, r.lang, r.sentiment
          FROM p CROSS JOIN ratings r
          WHERE r.comment IS NOT NULL AND r.rated_at >= p.period_start AND r.rated_at < p.period_end)
    GROUP BY period
),
periods AS (
    SELECT period FROM opened UNION SELECT period FROM resolved UNION SELECT period FROM rated
)
SELECT k.period,
       COALESCE(o.opened, 0) AS opened,
       COALESCE(s.resolved, 0) AS resolved,
       o.median_frt_seconds, o.mean_frt_seconds, o.median_frt_business_seconds,
       s.median_ttr_seconds, s.mean_ttr_seconds, s.median_ttr_business_seconds,
       COALESCE(s.fcr_tickets, 0) AS fcr_tickets,
       CAST(s.fcr_tickets AS DOUBLE) / NULLIF(s.resolved, 0) AS fcr_rate,
       wilson_low(s.fcr_tickets, s.resolved) AS fcr_low,
       wilson_high(s.fcr_tickets, s.resolved) AS fcr_high,
       COALESCE(s.reopened, 0) AS reopened,
       CAST(s.reopened AS DOUBLE) / NULLIF(s.resolved, 0) AS reopen_rate,
       wilson_low(s.reopened, s.resolved) AS reopen_low,
       wilson_high(s.reopened, s.resolved) AS reopen_high,
       s.mean_reassignments,
       COALESCE(s.sla_met, 0) AS sla_met,
       COALESCE(s.sla_known, 0) AS sla_known,
       CAST(s.sla_met AS DOUBLE) / NULLIF(s.sla_known, 0) AS sla_rate,
       wilson_low(s.sla_met, s.sla_known) AS sla_low,
       wilson_high(s.sla_met, s.sla_known) AS sla_high,
       COALESCE(s.offered, 0) AS offered,
       COALESCE(s.responded, 0) AS responded,
       CAST(s.responded AS DOUBLE) / NULLIF(s.offered, 0) AS response_rate,
       wilson_low(s.responded, s.offered) AS response_rate_low,
       wilson_high(s.responded, s.offered) AS response_rate_high,
       COALESCE(r.ratings, 0) AS ratings,
       CAST(r.satisfied AS DOUBLE) / NULLIF(r.ratings, 0) AS csat,
       wilson_low(r.satisfied, r.ratings) AS csat_low,
       wilson_high(r.satisfied, r.ratings) AS csat_high,
       COALESCE(r.bot_ratings, 0) AS bot_ratings,
       CAST(r.bot_satisfied AS DOUBLE) / NULLIF(r.bot_ratings, 0) AS bot_csat,
       COALESCE(r.human_ratings, 0) AS human_ratings,
       CAST(r.human_satisfied AS DOUBLE) / NULLIF(r.human_ratings, 0) AS human_csat,
       COALESCE(r.without_ticket, 0) AS ratings_without_ticket,
       COALESCE(o.frt_left_out, 0) AS frt_left_out,
       COALESCE(s.ttr_left_out, 0) AS ttr_left_out,
       COALESCE(x.texts, 0) AS texts,
       COALESCE(x.texts_scored, 0) AS texts_scored,
       COALESCE(x.texts_other_language, 0) AS texts_other_language,
       COALESCE(x.texts_not_analysed, 0) AS texts_not_analysed
FROM periods k
LEFT JOIN opened o ON o.period = k.period
LEFT JOIN resolved s ON s.period = k.period
LEFT JOIN rated r ON r.period = k.period
LEFT JOIN texts x ON x.period = k.period
