-- A file's books: planned lines against what its ranges committed. Either the files of one run
-- (file_id null) or one file (run_id null).
SELECT f.file_id,
       f.name,
       f.path,
       f.state,
       f.lines,
       coalesce(sum(r.lines_applied), 0) AS lines_applied,
       coalesce(sum(r.lines_quarantined), 0) AS lines_quarantined,
       count(r.range_no) AS ranges,
       count(r.range_no) FILTER (WHERE r.done) AS ranges_done,
       f.disposed_to
FROM usage_ingest.files AS f
LEFT JOIN usage_ingest.ranges AS r ON r.file_id = f.file_id
WHERE f.claimed_by = %(run_id)s OR f.file_id = %(file_id)s
GROUP BY f.file_id
ORDER BY f.file_id
