-- metric: The lake's data quality, one row per check (deskpulse check)
-- order: "check", table_name, item
--
-- Data quality of the lake (DESIGN 4.6), one row per check and table (and item):
--   check       table_name    item      count                      total         examples
--   rows        each table    -         rows (first_at, last_at: the time range)
--   duplicate_keys            -         keys stored more than once rows          keys
--   missing     tickets, ...  column    rows without a value       rows
--   orphan      ratings,      -         rows whose ticket is not   rows          keys -> ticket
--               interactions            in the lake
--   rejects     _rejects      -         refused input rows                       file:line column: reason
--   before_opened, in_future  column    findings of that rule (kept rows, from _findings)
--                                                                                file:line key column=value
--   rating_before_opened, interaction_before_opened: a rating / interaction earlier than its
--               ticket's opening (needs both tables, so found here rather than at ingest)
--   channel_other tickets     -         tickets whose raw channel  tickets       raw values (count)
--                                       fell to 'other'
--   unrated     tickets       -         resolved tickets without   resolved
--                                       a rating
--   language    interactions, lang      texts in that language                   ((none): no letters)
--               ratings
--   not_scored  interactions, lang      texts without a sentiment  texts of that language
--               ratings                 (a language VADER does not read, or --no-sentiment)
-- Examples: at most three, in a stable order. A finding rule with no findings has no row here
-- (`deskpulse check` lists every rule, with 0).
WITH texts AS (
    SELECT 'interactions' AS table_name, lang, sentiment FROM interactions WHERE body IS NOT NULL
    UNION ALL
    SELECT 'ratings' AS table_name, lang, sentiment FROM ratings WHERE comment IS NOT NULL
),
resolved AS (
    SELECT t.ticket_id, r.ticket_id IS NOT NULL AS rated
    FROM tickets t LEFT JOIN (SELECT DISTINCT ticket_id FROM ratings) r ON r.ticket_id = t.ticket_id
    WHERE t.resolved_at IS NOT NULL
),
finding_examples AS (
    SELECT rule, "table" AS table_name, "column" AS item, source_file, line, key,
           source_file || ':' || CAST(line AS VARCHAR) || ' ' || key || ' ' || "column" || '='
             || COALESCE(value, '') AS example
    FROM _findings
),
checks AS (
    SELECT 'rows' AS "check", 'tickets' AS table_name, CAST(NULL AS VARCHAR) AS item,
           COUNT(*) AS count, CAST(NULL AS BIGINT) AS total,
           MIN(opened_at) AS first_at, MAX(opened_at) AS last_at, CAST(NULL AS VARCHAR) AS examples
    FROM tickets
    UNION ALL
    SELECT 'rows', 'interactions', NULL, COUNT(*), NULL, MIN(at), MAX(at), NULL FROM interactions
    UNION ALL
    SELECT 'rows', 'ratings', NULL, COUNT(*), NULL, MIN(rated_at), MAX(rated_at), NULL FROM ratings
    UNION ALL
    SELECT 'duplicate_keys', table_name, NULL, COUNT(k), NULL, NULL, NULL,
           array_to_string(array_slice(array_agg(k ORDER BY k) FILTER (WHERE k IS NOT NULL), 1, 3), '; ')
    FROM (SELECT 'tickets' AS table_name, ticket_id AS k FROM tickets GROUP BY ticket_id HAVING COUNT(*) > 1
          UNION ALL
          SELECT 'interactions', interaction_id FROM interactions GROUP BY interaction_id HAVING COUNT(*) > 1
          UNION ALL
          SELECT 'ratings', rating_id FROM ratings GROUP BY rating_id HAVING COUNT(*) > 1
          UNION ALL
          SELECT table_name, NULL FROM (VALUES ('tickets'), ('interactions'), ('ratings')) v(table_name))
    GROUP BY table_name
    UNION ALL
    SELECT 'missing', 'tickets', 'requester_id', SUM(CASE WHEN requester_id IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL, NULL FROM tickets
    UNION ALL
    SELECT 'missing', 'tickets', 'category', SUM(CASE WHEN category IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL, NULL FROM tickets
    UNION ALL
    SELECT 'missing', 'tickets', 'assignment_group', SUM(CASE WHEN assignment_group IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL, NULL FROM tickets
    UNION ALL
    SELECT 'missing', 'ratings', 'channel', SUM(CASE WHEN channel IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL, NULL FROM ratings
    UNION ALL
    SELECT 'orphan', 'ratings', NULL, SUM(CASE WHEN t.ticket_id IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL,
           array_to_string(array_slice(array_agg(CASE WHEN t.ticket_id IS NULL THEN r.rating_id || ' -> ' || r.ticket_id END
                                                 ORDER BY r.rating_id) FILTER (WHERE t.ticket_id IS NULL), 1, 3), '; ')
    FROM ratings r LEFT JOIN tickets t ON t.ticket_id = r.ticket_id
    UNION ALL
    SELECT 'orphan', 'interactions', NULL, SUM(CASE WHEN t.ticket_id IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL,
           array_to_string(array_slice(array_agg(CASE WHEN t.ticket_id IS NULL THEN i.interaction_id || ' -> ' || i.ticket_id END
                                                 ORDER BY i.interaction_id) FILTER (WHERE t.ticket_id IS NULL), 1, 3), '; ')
    FROM interactions i LEFT JOIN tickets t ON t.ticket_id = i.ticket_id
    UNION ALL
    SELECT 'rejects', '_rejects', NULL, COUNT(*), NULL, NULL, NULL,
           array_to_string(array_slice(array_agg(source_file || ':' || CAST(line AS VARCHAR) || ' '
                                                 || COALESCE("column", '') || ': ' || reason
                                                 ORDER BY source_file, line), 1, 3), '; ')
    FROM _rejects
    UNION ALL
    SELECT rule, table_name, item, COUNT(*), NULL, NULL, NULL,
           array_to_string(array_slice(array_agg(example ORDER BY source_file, line, key), 1, 3), '; ')
    FROM finding_examples
    GROUP BY rule, table_name, item
    UNION ALL
    SELECT 'rating_before_opened', 'ratings', 'rated_at', COUNT(*), NULL, NULL, NULL,
           array_to_string(array_slice(array_agg(r.rating_id || ' rated_at=' || CAST(r.rated_at AS VARCHAR)
                                                 || ' < opened_at=' || CAST(t.opened_at AS VARCHAR) ORDER BY r.rating_id), 1, 3), '; ')
    FROM ratings r JOIN tickets t ON t.ticket_id = r.ticket_id
    WHERE r.rated_at < t.opened_at
    UNION ALL
    SELECT 'interaction_before_opened', 'interactions', 'at', COUNT(*), NULL, NULL, NULL,
           array_to_string(array_slice(array_agg(i.interaction_id || ' at=' || CAST(i.at AS VARCHAR)
                                                 || ' < opened_at=' || CAST(t.opened_at AS VARCHAR) ORDER BY i.interaction_id), 1, 3), '; ')
    FROM interactions i JOIN tickets t ON t.ticket_id = i.ticket_id
    WHERE i.at < t.opened_at
    UNION ALL
    SELECT 'channel_other', 'tickets', NULL, COALESCE(SUM(n), 0), (SELECT COUNT(*) FROM tickets), NULL, NULL,
           array_to_string(array_slice(array_agg(raw || ' (' || CAST(n AS VARCHAR) || ')' ORDER BY n DESC, raw), 1, 3), '; ')
    FROM (SELECT COALESCE(channel_raw, '(none)') AS raw, COUNT(*) AS n
          FROM tickets WHERE channel = 'other' GROUP BY COALESCE(channel_raw, '(none)'))
    UNION ALL
    SELECT 'unrated', 'tickets', NULL, SUM(CASE WHEN rated THEN 0 ELSE 1 END), COUNT(*), NULL, NULL, NULL
    FROM resolved
    UNION ALL
    SELECT 'language', table_name, COALESCE(lang, '(none)'), COUNT(*), NULL, NULL, NULL, NULL
    FROM texts GROUP BY table_name, lang
    UNION ALL
    SELECT 'not_scored', table_name, COALESCE(lang, '(none)'), SUM(CASE WHEN sentiment IS NULL THEN 1 ELSE 0 END), COUNT(*), NULL, NULL, NULL
    FROM texts GROUP BY table_name, lang
    HAVING SUM(CASE WHEN sentiment IS NULL THEN 1 ELSE 0 END) > 0
)
-- The window is a barrier: DataFusion 55 would push a filter on "check" (a constant in each
-- branch) below the branches' global aggregates, which then return a row for an empty input.
SELECT "check", table_name, item, COALESCE(count, 0) AS count, total, first_at, last_at, examples
FROM (SELECT c.*, ROW_NUMBER() OVER () AS n FROM checks c)
WHERE n > 0
