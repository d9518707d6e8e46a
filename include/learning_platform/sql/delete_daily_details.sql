-- Everything derived from a date's figures; recomputing the date writes it again.
WITH courses AS (
    DELETE FROM learning_platform.daily_course_stats WHERE stats_date = %(day)s
), reasons AS (
    DELETE FROM learning_platform.daily_quarantine_reasons WHERE stats_date = %(day)s
)
DELETE FROM learning_platform.daily_quality_checks WHERE stats_date = %(day)s
