SELECT task_id, location, outcome, result, source_size, source_version, rows, bytes_read, resumes,
    seconds, try_number, computed_at
FROM column_sums.results
WHERE task_id = ANY(%(task_ids)s)
