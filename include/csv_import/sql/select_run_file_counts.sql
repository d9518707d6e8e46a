-- Per file of the run: what its chunks recorded, the reject rows really stored for it, and
-- whether the target still holds this run's rows of it (a later run may have replaced them).
SELECT r.file_id, f.url, f.member, r.size, r.fingerprint, r.outcome,
       f.imported_by_run IS NOT DISTINCT FROM r.run_id AND f.status = 'imported' AS current,
       coalesce(sum(c.rows), 0)::bigint AS rows,
       coalesce(sum(c.rejects), 0)::bigint AS rejects,
       (SELECT count(*) FROM csv_import.rejects AS j WHERE j.run_id = r.run_id AND j.file_id = r.file_id)
           AS stored_rejects
FROM csv_import.run_files AS r
JOIN csv_import.files AS f ON f.id = r.file_id
LEFT JOIN csv_import.chunks AS c ON c.run_id = r.run_id AND c.file_id = r.file_id
WHERE r.run_id = %(run_id)s
GROUP BY r.run_id, r.file_id, f.url, f.member, r.size, r.fingerprint, r.outcome, f.imported_by_run, f.status
ORDER BY f.url, f.member NULLS FIRST
