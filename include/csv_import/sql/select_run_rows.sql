-- The rows a published run put in its target: those of the files it imported or replaced.
SELECT coalesce(sum(c.rows), 0)::bigint
FROM csv_import.chunks AS c
JOIN csv_import.run_files AS r USING (run_id, file_id)
WHERE c.run_id = %(run_id)s AND r.outcome IN ('imported', 'replaced')
