INSERT INTO learning_platform.quarantined_attempts (
    record, reasons, source_window_start, source_window_end, source_position, dag_run_id
)
SELECT record, reasons, window_start, window_end, position, %(dag_run_id)s
FROM learning_platform.staged_rejections
WHERE window_start >= %(start)s AND window_start < %(end)s
