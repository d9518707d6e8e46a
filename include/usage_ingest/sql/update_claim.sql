-- The run holds the file (again, or after an expired lease). Where the file is and its identity
-- are the current ones (a range task compares them with the file it opens); arrival_hour is
-- kept, so the file's usage stays booked to the hour it was first claimed in.
UPDATE usage_ingest.files
SET claimed_by = %(run_id)s,
    lease_until = now() + %(lease)s::interval,
    path = %(path)s,
    mtime = %(mtime)s,
    device = %(device)s,
    inode = %(inode)s
WHERE file_id = %(file_id)s
