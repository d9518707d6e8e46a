INSERT INTO learning_platform.daily_quarantine_reasons (stats_date, reason, records)
SELECT %(day)s, reason, count(*)
FROM learning_platform.quarantined_attempts, unnest(reasons) AS reason
WHERE source_window_start >= %(start)s AND source_window_start < %(end)s
GROUP BY reason
