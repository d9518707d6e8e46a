SELECT
    course_id, unique_users, runs, submits, successful_submits, success_share,
    submits::numeric / NULLIF(unique_users, 0),
    successful_submits::numeric / NULLIF(unique_users, 0)
FROM learning_platform.daily_course_stats
WHERE stats_date = %(day)s
ORDER BY runs + submits DESC, course_id NULLS LAST
