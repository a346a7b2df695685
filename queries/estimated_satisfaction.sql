-- metric: Survey CSAT beside estimated CSAT over all resolved tickets (ratings, else predictions)
-- depends: ticket_facts, ticket_ratings
-- order: period, channel
--
-- Estimated satisfaction (docs/prediction.md), per channel (the ticket's; 'other' when unknown)
-- and ISO week of resolution, or one period for --from/--to. Rows only when the lake holds
-- recorded predictions (`deskpulse predict --record`); the model used is the latest recorded
-- (by its predicted_at; ties: the higher model_id), never a mix of models. What the lake held
-- at an earlier moment is read with --as-of-version/--as-of-time (its snapshot), not with
-- as_of: a report of last week uses the model recorded this morning.
-- resolved: tickets resolved in the period, by as_of.
-- rated, rated_satisfied: those with a rating in the lake (the ticket's latest rating, given
--   in the period or after it: the best knowledge of how its requester felt);
--   survey_csat = rated_satisfied / rated, with its 95% Wilson interval.
-- predicted: the other resolved tickets with a probability from the model; expected_satisfied:
--   the sum of their probabilities. A rating always wins over a prediction.
-- not_covered: resolved tickets with neither (resolved, or ingested, after the model was
--   recorded); coverage = (rated + predicted) / resolved.
-- estimated_csat = (rated_satisfied + expected_satisfied) / (rated + predicted).
-- Its 95% interval: the rated tickets' outcomes are known; the predicted ones' are not, which
--   adds 1.96 * sqrt(sum of p(1 - p)) satisfied tickets either way, and the model's mean may be
--   off by as much as its validation said: |validation_bias| + 1.96 * 0.5 / sqrt(validation
--   tickets) per predicted ticket. Clamped to 0..1; NULL when the model's validation size is
--   unknown (0, as for predictions ingested from another tool without it).
WITH p AS (SELECT * FROM params),
recorded AS (
    SELECT * FROM predictions
),
latest AS (
    SELECT MAX(predicted_at) AS predicted_at FROM recorded
),
model AS (
    SELECT MAX(r.model_id) AS model_id FROM recorded r JOIN latest l ON r.predicted_at = l.predicted_at
),
model_error AS (
    SELECT m.model_id,
           MAX(ABS(r.validation_bias)) + 1.96 * 0.5 / SQRT(CAST(NULLIF(MIN(r.validation_tickets), 0) AS DOUBLE)) AS per_ticket
    FROM model m
    JOIN recorded r ON r.model_id = m.model_id
    GROUP BY m.model_id
),
predicted AS (
    SELECT r.ticket_id, r.p_satisfied
    FROM recorded r
    JOIN model m ON r.model_id = m.model_id
),
rated AS (
    SELECT g.ticket_id, CASE WHEN g.score_5 >= p.satisfied THEN 1 ELSE 0 END AS sat
    FROM ticket_ratings g, p
),
resolved AS (
    SELECT CASE WHEN p.by_week THEN iso_week(f.resolved_at) ELSE p.period_label END AS period,
           COALESCE(f.channel, 'other') AS channel, f.ticket_id
    FROM ticket_facts f, p
    WHERE f.resolved_at >= p.period_start AND f.resolved_at < p.period_end
      AND f.resolved_at <= p.as_of
),
tickets AS (
    SELECT s.period, s.channel, g.sat,
           CASE WHEN g.ticket_id IS NULL THEN x.p_satisfied END AS p_satisfied
    FROM resolved s
    LEFT JOIN rated g ON g.ticket_id = s.ticket_id
    LEFT JOIN predicted x ON x.ticket_id = s.ticket_id
),
stats AS (
    SELECT period, channel,
           COUNT(*) AS resolved,
           COUNT(sat) AS rated,
           COALESCE(SUM(sat), 0) AS rated_satisfied,
           COUNT(p_satisfied) AS predicted,
           COALESCE(SUM(p_satisfied), 0.0) AS expected_satisfied,
           COALESCE(SUM(p_satisfied * (1.0 - p_satisfied)), 0.0) AS outcome_variance
    FROM tickets
    GROUP BY period, channel
),
estimated AS (
    SELECT s.*, e.model_id,
           (s.rated_satisfied + s.expected_satisfied) / NULLIF(s.rated + s.predicted, 0) AS estimated_csat,
           (1.96 * SQRT(s.outcome_variance) + s.predicted * e.per_ticket) / NULLIF(s.rated + s.predicted, 0) AS half_width
    FROM stats s
    CROSS JOIN model_error e
)
SELECT period, channel, resolved, rated, rated_satisfied,
       CAST(rated_satisfied AS DOUBLE) / NULLIF(rated, 0) AS survey_csat,
       wilson_low(rated_satisfied, rated) AS survey_csat_low,
       wilson_high(rated_satisfied, rated) AS survey_csat_high,
       predicted, expected_satisfied,
       resolved - rated - predicted AS not_covered,
       CAST(rated + predicted AS DOUBLE) / resolved AS coverage,
       estimated_csat,
       GREATEST(estimated_csat - half_width, 0.0) AS estimated_csat_low,
       LEAST(estimated_csat + half_width, 1.0) AS estimated_csat_high,
       model_id
FROM estimated
