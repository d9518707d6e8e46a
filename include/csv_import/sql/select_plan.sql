SELECT c.file_id, f.url, f.member, r.size, r.fingerprint, c.number, c.start_byte, c.end_byte, c.first_line,
       c.done_at IS NOT NULL AS done
FROM csv_import.chunks AS c
JOIN csv_import.run_files AS r USING (run_id, file_id)
JOIN csv_import.files AS f ON f.id = c.file_id
WHERE c.run_id = %(run_id)s
ORDER BY f.url, f.member NULLS FIRST, c.number
