SELECT q.reason, count(*)
FROM usage_ingest.quarantine AS q
JOIN usage_ingest.files AS f ON f.file_id = q.file_id
WHERE f.claimed_by = %(run_id)s
GROUP BY q.reason
ORDER BY q.reason
