UPDATE usage_ingest.files
SET state = 'done',
    finished_at = now(),
    lines_applied = %(lines_applied)s,
    lines_quarantined = %(lines_quarantined)s
WHERE file_id = %(file_id)s AND state = 'claimed'
