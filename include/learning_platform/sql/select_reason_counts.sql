-- Quarantined records per reason for one interval (a record with two reasons counts under both).
SELECT reason, count(*) AS records
FROM learning_platform.quarantined_attempts, unnest(reasons) AS reason
WHERE source_window_start >= %(start)s AND source_window_start < %(end)s
GROUP BY reason
ORDER BY records DESC, reason
