-- The file ledger rows of the run's files, locked in id order (so two publishers never deadlock),
-- with what the run staged for each file.
SELECT f.id, f.url, f.member, f.status, f.fingerprint AS published_fingerprint, f.imported_by_run,
       r.size, r.fingerprint, r.columns,
       coalesce(c.rows, 0) AS rows, coalesce(c.rejects, 0) AS rejects, c.chunks, c.done
FROM csv_import.run_files AS r
JOIN csv_import.files AS f ON f.id = r.file_id
LEFT JOIN LATERAL (
    SELECT sum(k.rows) AS rows, sum(k.rejects) AS rejects, count(*) AS chunks,
           count(k.done_at) AS done
    FROM csv_import.chunks AS k
    WHERE k.run_id = r.run_id AND k.file_id = r.file_id
) AS c ON true
WHERE r.run_id = %(run_id)s
ORDER BY f.id
FOR UPDATE OF f
