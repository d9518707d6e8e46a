-- The work left for a run: the ranges not done of the files it holds, in file order.
SELECT r.file_id,
       r.range_no,
       f.name,
       (SELECT count(*) FROM usage_ingest.ranges AS a WHERE a.file_id = r.file_id) AS ranges
FROM usage_ingest.files AS f
JOIN usage_ingest.ranges AS r ON r.file_id = f.file_id
WHERE f.claimed_by = %(run_id)s AND f.state = 'claimed' AND NOT r.done
ORDER BY r.file_id, r.range_no
