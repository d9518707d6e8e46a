-- The very file the scan found (same name, place, size, mtime, inode) claimed by another run whose
-- lease is live: no need to read it for its digest, that run has it.
SELECT EXISTS (
    SELECT 1
    FROM usage_ingest.files
    WHERE name = %(name)s
      AND path = %(path)s
      AND size = %(size)s
      AND mtime = %(mtime)s
      AND device = %(device)s
      AND inode = %(inode)s
      AND state = 'claimed'
      AND claimed_by <> %(run_id)s
      AND lease_until >= now()
)
