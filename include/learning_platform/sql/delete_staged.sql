DELETE FROM learning_platform.staged_attempts
WHERE window_start >= %(start)s AND window_start < %(end)s
