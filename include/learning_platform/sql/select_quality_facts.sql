-- What the data-quality checks judge, for one date: the stored figures beside the same
-- figures counted again from the warehouse, and natural-key duplicates among the attempts.
WITH day_attempts AS (
    SELECT user_id, attempt_type, is_correct, created_at, lis_result_sourcedid
    FROM learning_platform.attempts
    WHERE created_at >= %(start)s AND created_at < %(end)s
), warehouse AS (
    SELECT
        count(*)                                                        AS loaded,
        count(DISTINCT user_id)                                         AS unique_users,
        count(*) FILTER (WHERE attempt_type = 'run')                    AS runs,
        count(*) FILTER (WHERE attempt_type = 'submit')                 AS submits,
        count(*) FILTER (WHERE attempt_type = 'submit' AND is_correct)  AS successful_submits
    FROM day_attempts
), quarantine AS (
    SELECT count(*) AS quarantined
    FROM learning_platform.quarantined_attempts
    WHERE source_window_start >= %(start)s AND source_window_start < %(end)s
), duplicates AS (
    -- the same student's same attempt at the same microsecond, stored more than once
    SELECT coalesce(sum(copies - 1), 0) AS extra_copies
    FROM (
        SELECT count(*) AS copies
        FROM day_attempts
        GROUP BY user_id, attempt_type, created_at, lis_result_sourcedid
        HAVING count(*) > 1
    ) AS repeated
)
SELECT
    s.fetched - s.boundary_copies, s.loaded, s.quarantined, s.unique_users, s.runs, s.submits, s.successful_submits,
    w.loaded, q.quarantined, w.unique_users, w.runs, w.submits, w.successful_submits,
    d.extra_copies
FROM learning_platform.daily_stats AS s, warehouse AS w, quarantine AS q, duplicates AS d
WHERE s.stats_date = %(day)s
