-- Work on the file is progressing: other runs keep away a while longer.
UPDATE usage_ingest.files
SET lease_until = greatest(lease_until, now() + %(lease)s::interval)
WHERE file_id = %(file_id)s
