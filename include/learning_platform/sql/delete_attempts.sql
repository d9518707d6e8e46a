-- By the key the rows are written with (the window they were landed in), not by created_at:
-- whatever windows an earlier run of the interval used, they all started inside it.
DELETE FROM learning_platform.attempts
WHERE source_window_start >= %(start)s AND source_window_start < %(end)s
