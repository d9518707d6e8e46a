DELETE FROM learning_platform.raw_attempts
WHERE window_start >= %(start)s AND window_start < %(end)s
