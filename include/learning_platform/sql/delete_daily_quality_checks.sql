DELETE FROM learning_platform.daily_quality_checks WHERE stats_date = %(day)s
