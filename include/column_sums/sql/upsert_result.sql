-- A rerun of the same request replaces its row: one row per task id, whatever the retries.
INSERT INTO column_sums.results (
    task_id, location, outcome, result, source_size, source_version, rows, bytes_read, resumes,
    seconds, try_number
)
VALUES (
    %(task_id)s, %(location)s, %(outcome)s, %(result)s, %(source_size)s, %(source_version)s,
    %(rows)s, %(bytes_read)s, %(resumes)s, %(seconds)s, %(try_number)s
)
ON CONFLICT (task_id) DO UPDATE SET
    location = excluded.location,
    outcome = excluded.outcome,
    result = excluded.result,
    source_size = excluded.source_size,
    source_version = excluded.source_version,
    rows = excluded.rows,
    bytes_read = excluded.bytes_read,
    resumes = excluded.resumes,
    seconds = excluded.seconds,
    try_number = excluded.try_number,
    computed_at = now()
