-- metric: Rating comments' sentiment in 20 bins
-- order: bin
--
-- How rating comments given in the period feel: their VADER compound sentiment in 20 bins of 0.1
-- from -1 to 1 (the last bin includes 1). Every bin is listed, empty ones with 0. The usual VADER
-- classes are negative <= -0.05 < neutral < 0.05 <= positive (see channel_satisfaction).
WITH p AS (SELECT * FROM params),
scored AS (
    SELECT LEAST(CAST(floor((r.sentiment + 1.0) * 10.0) AS BIGINT), 19) AS bin
    FROM p CROSS JOIN ratings r
    WHERE r.comment IS NOT NULL AND r.sentiment IS NOT NULL
      AND r.rated_at >= p.period_start AND r.rated_at < p.period_end
),
bins AS (
    SELECT column1 AS bin FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10),
                                      (11), (12), (13), (14), (15), (16), (17), (18), (19))
)
SELECT b.bin, -1.0 + b.bin / 10.0 AS low, -1.0 + (b.bin + 1) / 10.0 AS high,
       COUNT(s.bin) AS comments
FROM bins b
LEFT JOIN scored s ON s.bin = b.bin
GROUP BY b.bin
