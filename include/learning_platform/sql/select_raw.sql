SELECT window_start, window_end, position, record
FROM learning_platform.raw_attempts
WHERE window_start >= %(start)s AND window_start < %(end)s
ORDER BY window_start, position
