-- A new file content under this name: registered and claimed by the run in one statement. On a
-- known (name, sha256) nothing is inserted and nothing returned: the caller reads who has it.
-- A second run inserting the same file at the same time waits here until the first commits.
INSERT INTO usage_ingest.files (
    name, sha256, path, size, mtime, device, inode, arrival_hour, lines, claimed_by, lease_until
)
VALUES (
    %(name)s, %(sha256)s, %(path)s, %(size)s, %(mtime)s, %(device)s, %(inode)s,
    date_trunc('hour', %(mtime)s::timestamptz, 'UTC'), %(lines)s, %(run_id)s, now() + %(lease)s::interval
)
ON CONFLICT (name, sha256) DO NOTHING
RETURNING file_id
