DELETE FROM learning_platform.quarantined_attempts
WHERE source_window_start >= %(start)s AND source_window_start < %(end)s
