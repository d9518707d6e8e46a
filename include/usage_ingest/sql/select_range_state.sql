SELECT r.file_id, r.range_no, f.path, f.name, f.size, f.mtime, f.device, f.inode, f.arrival_hour,
       r.committed_offset, r.end_offset, r.next_line, r.done
FROM usage_ingest.ranges AS r
JOIN usage_ingest.files AS f ON f.file_id = r.file_id
WHERE r.file_id = %(file_id)s AND r.range_no = %(range_no)s
