-- A retried claim of the same run records the same drop once.
INSERT INTO usage_ingest.duplicate_drops (name, sha256, size, mtime, file_id, run_id, disposed_to)
VALUES (%(name)s, %(sha256)s, %(size)s, %(mtime)s, %(file_id)s, %(run_id)s, %(disposed_to)s)
ON CONFLICT (run_id, name, sha256) DO UPDATE SET disposed_to = EXCLUDED.disposed_to
