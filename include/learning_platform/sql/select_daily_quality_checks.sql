SELECT check_name, passed, observed, expected
FROM learning_platform.daily_quality_checks
WHERE stats_date = %(day)s
ORDER BY check_name
