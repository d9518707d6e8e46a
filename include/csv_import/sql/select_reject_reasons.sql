SELECT reason, count(*) FROM csv_import.rejects
WHERE run_id = %(run_id)s AND file_id = ANY(%(file_ids)s)
GROUP BY reason ORDER BY reason
