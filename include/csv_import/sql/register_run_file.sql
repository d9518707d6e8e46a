-- A file of the run as discovery found it; found again (a retried discovery), it takes the new
-- size and fingerprint, and inference reads it anew.
INSERT INTO csv_import.run_files (run_id, file_id, size, fingerprint)
VALUES (%(run_id)s, %(file_id)s, %(size)s, %(fingerprint)s)
ON CONFLICT (run_id, file_id) DO UPDATE SET size = EXCLUDED.size, fingerprint = EXCLUDED.fingerprint
