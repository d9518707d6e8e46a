-- Locked: a second attempt at the same chunk running at the same time (a task thought lost and
-- its retry) waits here, then finds the chunk done.
SELECT done_at IS NOT NULL AS done, fingerprint, first_line, last_line, rows, rejects
FROM csv_import.chunks
WHERE run_id = %(run_id)s AND file_id = %(file_id)s AND number = %(number)s
FOR UPDATE
