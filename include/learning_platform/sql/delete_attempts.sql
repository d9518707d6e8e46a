DELETE FROM learning_platform.attempts
WHERE created_at >= %(start)s AND created_at < %(end)s
