-- Locked until the batch commits: a second process on the same range waits here, then finds the
-- checkpoint moved past its batch (stale) and applies nothing.
SELECT r.committed_offset, r.next_line, r.end_offset, r.first_line + r.lines AS end_line, f.arrival_hour, f.name
FROM usage_ingest.ranges AS r
JOIN usage_ingest.files AS f ON f.file_id = r.file_id
WHERE r.file_id = %(file_id)s AND r.range_no = %(range_no)s
FOR UPDATE OF r
