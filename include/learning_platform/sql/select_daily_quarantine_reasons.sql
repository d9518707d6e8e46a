SELECT reason, records
FROM learning_platform.daily_quarantine_reasons
WHERE stats_date = %(day)s
ORDER BY records DESC, reason
