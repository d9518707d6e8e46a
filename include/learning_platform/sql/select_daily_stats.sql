-- Daily figures from first_day to last_day, with the names of the quality checks that failed
-- on them (NULL: the checks have not run on these figures).
SELECT
    s.stats_date, s.interval_start, s.interval_end,
    s.fetched, s.loaded, s.quarantined, s.flagged,
    s.unique_users, s.runs, s.submits, s.successful_submits,
    s.success_share, s.avg_submits_per_user, s.avg_successful_submits_per_user,
    s.computed_at,
    (
        SELECT CASE WHEN count(*) = 0 THEN NULL
                    ELSE coalesce(array_agg(q.check_name ORDER BY q.check_name)
                                  FILTER (WHERE NOT q.passed), '{}') END
        FROM learning_platform.daily_quality_checks AS q
        WHERE q.stats_date = s.stats_date
    ) AS failed_checks,
    s.boundary_copies
FROM learning_platform.daily_stats AS s
WHERE s.stats_date BETWEEN %(first_day)s AND %(last_day)s
ORDER BY s.stats_date
