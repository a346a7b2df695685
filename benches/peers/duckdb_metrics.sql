-- The peer benchmark's metric set in DuckDB SQL: channel_satisfaction, pair_summary and kpis,
-- written from the definitions in DESIGN section 4 (queries/*.sql in DuckDB's dialect), over the
-- deskpulse lake's Parquet files ($LAKE is replaced by the driver). Whole period, by ISO week in
-- UTC, and the benchmark's deskpulse.toml: calendar-time reply targets (no business-hours
-- calendar in DuckDB, so the business-seconds columns are left out of the comparison).
SET TimeZone = 'UTC';

CREATE MACRO iso_week(t) AS strftime(CAST(t AS TIMESTAMP), '%G-W%V');
CREATE MACRO wilson_centre(k, n) AS
    (k / n + 1.959963984540054 ^ 2 / (2 * n)) / (1 + 1.959963984540054 ^ 2 / n);
CREATE MACRO wilson_half(k, n) AS
    1.959963984540054 * sqrt((k / n) * (1 - k / n) / n + 1.959963984540054 ^ 2 / (4 * n * n))
    / (1 + 1.959963984540054 ^ 2 / n);
CREATE MACRO wilson_low(k, n) AS
    CASE WHEN n > 0 THEN greatest(0.0, wilson_centre(k, n) - wilson_half(k, n)) END;
CREATE MACRO wilson_high(k, n) AS
    CASE WHEN n > 0 THEN least(1.0, wilson_centre(k, n) + wilson_half(k, n)) END;

CREATE VIEW tickets AS
    SELECT * FROM read_parquet('$LAKE/tickets/*/*.parquet', hive_partitioning = false);
CREATE VIEW interactions AS
    SELECT * FROM read_parquet('$LAKE/interactions/*/*.parquet', hive_partitioning = false);
CREATE VIEW ratings AS
    SELECT * FROM read_parquet('$LAKE/ratings/*/*.parquet', hive_partitioning = false);
CREATE TABLE targets AS SELECT * FROM (VALUES
    ('phone', 60.0), ('chat', 300.0), ('messaging', 300.0), ('sms', 300.0), ('social', 300.0),
    ('bot', 300.0), ('email', 14400.0), ('portal', 14400.0), ('walk_in', 28800.0),
    ('screen_share', 28800.0), ('other', 28800.0)) AS t(channel, target_seconds);

CREATE VIEW ticket_ratings AS
    SELECT ticket_id, rating_id, rated_at, score_5 FROM (
        SELECT ticket_id, rating_id, rated_at, score_5,
               row_number() OVER (PARTITION BY ticket_id ORDER BY rated_at DESC, rating_id DESC) AS rn
        FROM ratings)
    WHERE rn = 1;

CREATE VIEW ticket_facts AS
WITH replies AS (
    SELECT ticket_id, min("at") AS first_reply_at,
           sum(CASE WHEN actor_role = 'agent' THEN 1 ELSE 0 END) AS agent_replies
    FROM interactions
    WHERE is_public AND actor_role IN ('agent', 'bot')
    GROUP BY ticket_id
),
requester AS (
    SELECT ticket_id, count(DISTINCT channel) AS requester_channels
    FROM interactions WHERE actor_role = 'requester' GROUP BY ticket_id
),
last_touch AS (
    SELECT ticket_id, last(channel ORDER BY "at", seq NULLS FIRST, interaction_id) AS last_channel
    FROM interactions GROUP BY ticket_id
)
SELECT t.ticket_id, t.channel, t.category, t.opened_at, t.resolved_at, t.survey_offered,
       t.reassignment_count, t.reopen_count, t.made_sla,
       COALESCE(r.agent_replies, 0) AS agent_replies,
       q.requester_channels, l.last_channel,
       d.ticket_id IS NOT NULL AS has_rating,
       (epoch_us(COALESCE(r.first_reply_at, t.first_response_at)) - epoch_us(t.opened_at)) / 1e6 AS frt_seconds,
       (epoch_us(t.resolved_at) - epoch_us(t.opened_at)) / 1e6 AS ttr_seconds
FROM tickets t
LEFT JOIN replies r ON r.ticket_id = t.ticket_id
LEFT JOIN requester q ON q.ticket_id = t.ticket_id
LEFT JOIN last_touch l ON l.ticket_id = t.ticket_id
LEFT JOIN ticket_ratings d ON d.ticket_id = t.ticket_id;

CREATE VIEW channel_satisfaction AS
WITH rated AS (
    SELECT iso_week(r.rated_at) AS period, f.channel, COALESCE(f.category, '') AS category,
           r.ticket_id, r.score_5, r.comment, r.sentiment, r.channel AS rating_channel,
           f.last_channel, CASE WHEN r.score_5 >= 4.0 THEN 1 ELSE 0 END AS sat
    FROM ratings r JOIN ticket_facts f ON f.ticket_id = r.ticket_id
),
resolved AS (
    SELECT iso_week(resolved_at) AS period, * FROM ticket_facts WHERE resolved_at IS NOT NULL
),
rating_stats AS (
    SELECT period, channel, count(*) AS ratings, count(DISTINCT ticket_id) AS rated_tickets,
           sum(sat) AS satisfied, avg(score_5) AS mean_score,
           avg(CASE WHEN comment IS NOT NULL THEN sentiment END) AS comment_sentiment,
           sum(CASE WHEN comment IS NOT NULL AND sentiment IS NOT NULL THEN 1 ELSE 0 END) AS comments,
           sum(CASE WHEN comment IS NOT NULL AND sentiment <= -0.05 THEN 1 ELSE 0 END) AS negative_comments,
           sum(CASE WHEN rating_channel IS NOT NULL AND last_channel IS NOT NULL THEN 1 ELSE 0 END) AS located_ratings,
           sum(CASE WHEN rating_channel = last_channel THEN 1 ELSE 0 END) AS in_channel_ratings
    FROM rated GROUP BY period, channel
),
ticket_stats AS (
    SELECT period, channel, count(*) AS resolved,
           sum(CASE WHEN survey_offered IS NULL OR survey_offered THEN 1 ELSE 0 END) AS offered,
           sum(CASE WHEN (survey_offered IS NULL OR survey_offered) AND has_rating THEN 1 ELSE 0 END) AS responded,
           sum(CASE WHEN requester_channels IS NOT NULL THEN 1 ELSE 0 END) AS with_requester,
           sum(CASE WHEN requester_channels > 1 THEN 1 ELSE 0 END) AS switched,
           median(frt_seconds) AS median_frt_seconds, median(ttr_seconds) AS median_ttr_seconds
    FROM resolved GROUP BY period, channel
),
mix AS (SELECT period, category, count(*) AS n FROM rated GROUP BY period, category),
cell AS (
    SELECT period, channel, category, avg(CAST(sat AS DOUBLE)) AS csat
    FROM rated GROUP BY period, channel, category
),
adjusted AS (
    SELECT c.period, c.channel, sum(c.csat * m.n) / sum(m.n) AS csat_adjusted
    FROM cell c JOIN mix m ON m.period = c.period AND m.category = c.category
    GROUP BY c.period, c.channel
),
keys AS (
    SELECT period, channel FROM rating_stats UNION SELECT period, channel FROM ticket_stats
)
SELECT k.period, k.channel,
       COALESCE(r.ratings, 0) AS ratings, COALESCE(r.rated_tickets, 0) AS rated_tickets,
       COALESCE(r.satisfied, 0) AS satisfied,
       r.satisfied / r.ratings AS csat,
       wilson_low(r.satisfied, r.ratings) AS csat_low,
       wilson_high(r.satisfied, r.ratings) AS csat_high,
       a.csat_adjusted, r.mean_score, r.comment_sentiment,
       COALESCE(r.comments, 0) AS comments,
       r.negative_comments / nullif(r.comments, 0) AS negative_comment_share,
       COALESCE(r.located_ratings, 0) AS located_ratings,
       r.in_channel_ratings / nullif(r.located_ratings, 0) AS in_channel_rating_share,
       COALESCE(t.resolved, 0) AS resolved, COALESCE(t.offered, 0) AS offered,
       COALESCE(t.responded, 0) AS responded,
       t.responded / nullif(t.offered, 0) AS response_rate,
       COALESCE(t.with_requester, 0) AS with_requester,
       t.switched / nullif(t.with_requester, 0) AS channel_switch_share,
       t.median_frt_seconds, t.median_ttr_seconds
FROM keys k
LEFT JOIN rating_stats r ON r.period = k.period AND r.channel = k.channel
LEFT JOIN ticket_stats t ON t.period = k.period AND t.channel = k.channel
LEFT JOIN adjusted a ON a.period = k.period AND a.channel = k.channel;

CREATE VIEW pairs AS
WITH pub AS (
    SELECT ticket_id, interaction_id, "at", actor_role, actor_id, channel, sentiment,
           row_number() OVER (PARTITION BY ticket_id ORDER BY "at", seq NULLS FIRST, interaction_id) AS pos
    FROM interactions
    WHERE is_public AND actor_role IN ('requester', 'agent', 'bot')
),
marked AS (
    SELECT *, CASE WHEN actor_role = 'requester'
                    AND COALESCE(lag(actor_role) OVER (PARTITION BY ticket_id ORDER BY pos), '') <> 'requester'
                   THEN 1 ELSE 0 END AS run_start
    FROM pub
),
runs AS (
    SELECT *, sum(run_start) OVER (PARTITION BY ticket_id ORDER BY pos
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
    FROM marked
),
requests AS (
    SELECT ticket_id, run, min("at") AS request_at, max(pos) AS last_pos,
           avg(sentiment) AS request_sentiment, last(channel ORDER BY pos) AS request_channel
    FROM runs WHERE actor_role = 'requester' GROUP BY ticket_id, run
),
with_followup AS (
    SELECT *, lead(request_sentiment) OVER (PARTITION BY ticket_id ORDER BY run) AS followup_sentiment
    FROM requests
),
answered AS (
    SELECT q.*, r."at" AS response_at, r.interaction_id AS response_id,
           r.actor_role AS responder_role, r.actor_id AS responder_id,
           row_number() OVER (PARTITION BY q.ticket_id ORDER BY q.run DESC) = 1 AS is_last_pair
    FROM with_followup q JOIN pub r ON r.ticket_id = q.ticket_id AND r.pos = q.last_pos + 1
),
reply_rating AS (
    SELECT interaction_id, score_5 FROM (
        SELECT interaction_id, score_5,
               row_number() OVER (PARTITION BY interaction_id ORDER BY rated_at DESC, rating_id DESC) AS rn
        FROM ratings WHERE interaction_id IS NOT NULL)
    WHERE rn = 1
),
scored AS (
    SELECT a.*, t.category,
           (epoch_us(a.response_at) - epoch_us(a.request_at)) / 1e6 AS latency_seconds,
           COALESCE(rr.score_5, CASE WHEN a.is_last_pair THEN tr.score_5 END) AS rating,
           COALESCE(g.target_seconds, 28800.0) AS target_seconds
    FROM answered a
    JOIN tickets t ON t.ticket_id = a.ticket_id
    LEFT JOIN reply_rating rr ON rr.interaction_id = a.response_id
    LEFT JOIN ticket_ratings tr ON tr.ticket_id = a.ticket_id
    LEFT JOIN targets g ON g.channel = a.request_channel
),
components AS (
    SELECT *, (rating - 1.0) / 4.0 AS rating_component,
           (followup_sentiment + 1.0) / 2.0 AS mood_component,
           CASE WHEN latency_seconds <= target_seconds THEN 1.0
                ELSE greatest(0.0, 1.0 - (latency_seconds - target_seconds) / (3.0 * target_seconds))
           END AS promptness_component
    FROM scored
)
SELECT ticket_id, category, request_channel, responder_role, responder_id, request_sentiment,
       followup_sentiment, followup_sentiment - request_sentiment AS sentiment_delta, rating,
       rating_component, mood_component, latency_seconds,
       100.0 * (0.5 * COALESCE(rating_component, 0.0) + 0.3 * COALESCE(mood_component, 0.0)
                + 0.2 * promptness_component)
             / (CASE WHEN rating_component IS NULL THEN 0.0 ELSE 0.5 END
                + CASE WHEN mood_component IS NULL THEN 0.0 ELSE 0.3 END + 0.2) AS pair_score,
       COALESCE(request_sentiment <= -0.5, false) AS hotspot
FROM components;

CREATE VIEW pair_summary AS
SELECT CASE WHEN grouping(responder_role) = 0 THEN 'responder_role'
            WHEN grouping(responder_id) = 0 THEN 'responder'
            WHEN grouping(request_channel) = 0 THEN 'channel'
            ELSE 'category' END AS dimension,
       COALESCE(responder_role, responder_id, request_channel, category, '') AS value,
       count(*) AS pairs, avg(pair_score) AS mean_pair_score, avg(rating) AS mean_rating,
       avg(CASE WHEN rating_component IS NOT NULL THEN 1.0 ELSE 0.0 END) AS share_with_rating,
       avg(CASE WHEN mood_component IS NOT NULL THEN 1.0 ELSE 0.0 END) AS share_with_mood,
       avg(request_sentiment) AS mean_request_sentiment,
       avg(followup_sentiment) AS mean_followup_sentiment,
       avg(sentiment_delta) AS mean_sentiment_delta,
       count(sentiment_delta) AS pairs_with_followup,
       sum(CASE WHEN hotspot THEN 1 ELSE 0 END) AS hotspots,
       median(latency_seconds) AS median_latency_seconds
FROM pairs
GROUP BY GROUPING SETS ((responder_role), (responder_id), (request_channel), (category));

CREATE VIEW kpis AS
WITH opened AS (
    SELECT iso_week(opened_at) AS period, count(*) AS opened,
           median(frt_seconds) AS median_frt_seconds, avg(frt_seconds) AS mean_frt_seconds
    FROM ticket_facts GROUP BY 1
),
resolved AS (
    SELECT iso_week(resolved_at) AS period, count(*) AS resolved,
           median(ttr_seconds) AS median_ttr_seconds, avg(ttr_seconds) AS mean_ttr_seconds,
           sum(CASE WHEN COALESCE(reopen_count, 0) = 0 AND agent_replies <= 1 THEN 1 ELSE 0 END) AS fcr_tickets,
           sum(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END) AS reopened,
           avg(CAST(reassignment_count AS DOUBLE)) AS mean_reassignments,
           sum(CASE WHEN made_sla THEN 1 ELSE 0 END) AS sla_met,
           sum(CASE WHEN made_sla IS NOT NULL THEN 1 ELSE 0 END) AS sla_known,
           sum(CASE WHEN survey_offered IS NULL OR survey_offered THEN 1 ELSE 0 END) AS offered,
           sum(CASE WHEN (survey_offered IS NULL OR survey_offered) AND has_rating THEN 1 ELSE 0 END) AS responded
    FROM ticket_facts WHERE resolved_at IS NOT NULL GROUP BY 1
),
rated AS (
    SELECT iso_week(r.rated_at) AS period, count(*) AS ratings,
           sum(CASE WHEN r.score_5 >= 4.0 THEN 1 ELSE 0 END) AS satisfied,
           sum(CASE WHEN t.resolution_path = 'bot' THEN 1 ELSE 0 END) AS bot_ratings,
           sum(CASE WHEN t.resolution_path = 'bot' AND r.score_5 >= 4.0 THEN 1 ELSE 0 END) AS bot_satisfied,
           sum(CASE WHEN t.resolution_path = 'agent' THEN 1 ELSE 0 END) AS human_ratings,
           sum(CASE WHEN t.resolution_path = 'agent' AND r.score_5 >= 4.0 THEN 1 ELSE 0 END) AS human_satisfied
    FROM ratings r JOIN tickets t ON t.ticket_id = r.ticket_id GROUP BY 1
),
periods AS (SELECT period FROM opened UNION SELECT period FROM resolved UNION SELECT period FROM rated)
SELECT k.period, COALESCE(o.opened, 0) AS opened, COALESCE(s.resolved, 0) AS resolved,
       o.median_frt_seconds, o.mean_frt_seconds, s.median_ttr_seconds, s.mean_ttr_seconds,
       COALESCE(s.fcr_tickets, 0) AS fcr_tickets,
       s.fcr_tickets / nullif(s.resolved, 0) AS fcr_rate,
       wilson_low(s.fcr_tickets, s.resolved) AS fcr_low,
       wilson_high(s.fcr_tickets, s.resolved) AS fcr_high,
       COALESCE(s.reopened, 0) AS reopened, s.mean_reassignments,
       COALESCE(s.sla_met, 0) AS sla_met, COALESCE(s.sla_known, 0) AS sla_known,
       COALESCE(s.offered, 0) AS offered, COALESCE(s.responded, 0) AS responded,
       COALESCE(r.ratings, 0) AS ratings, r.satisfied / nullif(r.ratings, 0) AS csat,
       COALESCE(r.bot_ratings, 0) AS bot_ratings,
       r.bot_satisfied / nullif(r.bot_ratings, 0) AS bot_csat,
       COALESCE(r.human_ratings, 0) AS human_ratings,
       r.human_satisfied / nullif(r.human_ratings, 0) AS human_csat
FROM periods k
LEFT JOIN opened o ON o.period = k.period
LEFT JOIN resolved s ON s.period = k.period
LEFT JOIN rated r ON r.period = k.period;
