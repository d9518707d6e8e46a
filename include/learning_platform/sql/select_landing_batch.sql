SELECT landing_id, records
FROM learning_platform.landing_batches
WHERE interval_start = %(start)s AND interval_end = %(end)s
